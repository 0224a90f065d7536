//! `dns` probe: one query (A, AAAA, CNAME, MX, TXT, SRV, NS, SOA, PTR) to a DNS server or the
//! system's (the first `nameserver` of /etc/resolv.conf), over UDP retried over TCP when the
//! answer comes truncated, or over TCP only; the response code and the section sizes
//! exported as gauges, and the answer checked as blackbox_exporter's dns prober does
//! (`valid_rcodes`, `validate_*_rrs` regexes over the records in text form) or against an
//! exact list of record data (`expect`). `dnssec` sets the DO bit and requires AD.
//!
//! Phases: `resolve` (the server's address), `query` (the first exchange: UDP, or with
//! `transport: tcp` the TCP exchange after `connect`), and after a truncated UDP answer
//! `connect` and `transfer` (the same query over TCP). The messages are hickory-proto's;
//! the exchange is ours, over tokio sockets, so each phase is timed on its own.

mod exchange;
mod text;

use crate::probe::common::kind::{KindFamily, Probe, ProbeKind, RetargetError};
use crate::probe::kinds::logs::patterns::{self, PatternError};
use crate::probe::{Kind, Observation, Outcome, ProbeError, Reason, Trace, resolve};
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use regex::Regex;
use serde::Deserialize;
use std::time::Duration;

/// The response code, numerically (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED).
const RCODE: KindFamily = KindFamily::gauge(
    "dns_rcode",
    "Response code of the last answer (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED)",
)
.removed_when_unreported()
.on_demand();
const ANSWER_RRS: KindFamily = KindFamily::gauge(
    "dns_answer_rrs",
    "Records in the answer section of the last answer",
)
.removed_when_unreported()
.on_demand();
const AUTHORITY_RRS: KindFamily = KindFamily::gauge(
    "dns_authority_rrs",
    "Records in the authority section of the last answer",
)
.removed_when_unreported()
.on_demand();
const ADDITIONAL_RRS: KindFamily = KindFamily::gauge(
    "dns_additional_rrs",
    "Records in the additional section of the last answer (the EDNS OPT record aside)",
)
.removed_when_unreported()
.on_demand();

/// The UDP payload size offered with EDNS: the 2020 DNS flag day's, which no path fragments.
const EDNS_UDP_SIZE: u16 = 1232;

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The name asked for (`example.com`; a name without a final dot is taken as absolute).
    pub(crate) query_name: String,
    /// The record type asked for (default `A`).
    #[serde(default)]
    pub(crate) query_type: QueryType,
    /// The server asked: `host:port`, or `host` for port 53 (`[::1]:5353` for IPv6 with a
    /// port). Default: the first `nameserver` of /etc/resolv.conf, port 53.
    pub(crate) server: Option<String>,
    /// `udp` (default; asked again over TCP when the answer is truncated) or `tcp` (TCP
    /// only).
    #[serde(default)]
    pub(crate) transport: DnsTransport,
    /// Ask the server to recurse (the RD bit); off to ask an authoritative server about its
    /// own zones only.
    #[serde(default = "yes")]
    pub(crate) recursion_desired: bool,
    /// Send an EDNS(0) OPT record offering 1232-byte UDP answers. Off, an answer over 512
    /// bytes comes truncated and is asked again over TCP.
    #[serde(default = "yes")]
    pub(crate) edns: bool,
    /// Set the DNSSEC OK (DO) bit and require the Authentic Data (AD) bit in the answer:
    /// the server validated it with DNSSEC. Needs `edns`.
    #[serde(default)]
    pub(crate) dnssec: bool,
    /// The response codes that count as success (default `[NOERROR]`).
    #[serde(default = "noerror")]
    pub(crate) valid_rcodes: Vec<Rcode>,
    /// Checks on the answer section's records in text form: `name`, TTL, class, type and
    /// data separated by tabs, as blackbox_exporter shows them
    /// (`www.example.com.\t300\tIN\tA\t192.0.2.1`; TXT data as quoted strings).
    #[serde(default)]
    pub(crate) validate_answer_rrs: RrChecks,
    /// The same checks on the authority section's records.
    #[serde(default)]
    pub(crate) validate_authority_rrs: RrChecks,
    /// The same checks on the additional section's records (the EDNS OPT record aside).
    #[serde(default)]
    pub(crate) validate_additional_rrs: RrChecks,
    /// The exact data of the answer's records of `query_type`, in any order: `192.0.2.1`,
    /// `10 mail.example.com.` (MX), `"v=spf1 -all"` (TXT, quoted), `0 5 5060 sip.example.com.`
    /// (SRV). Names end with a dot; an address matches in any spelling. Records of other
    /// types (a CNAME on the way) are not compared.
    pub(crate) expect: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

fn noerror() -> Vec<Rcode> {
    vec![Rcode::Noerror]
}

/// blackbox_exporter's regex checks on one section's records; a regex matches anywhere in a
/// record's text unless anchored.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RrChecks {
    /// Fail if any record matches any of these.
    #[serde(default)]
    pub(crate) fail_if_matches_regexp: Vec<String>,
    /// Fail if every record matches one of these (and there is at least one record).
    #[serde(default)]
    pub(crate) fail_if_all_match_regexp: Vec<String>,
    /// Fail if any record does not match one of these.
    #[serde(default)]
    pub(crate) fail_if_not_matches_regexp: Vec<String>,
    /// Fail if no record matches one of these (an empty section fails).
    #[serde(default)]
    pub(crate) fail_if_none_matches_regexp: Vec<String>,
}

/// The record types a `dns` probe asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub(crate) enum QueryType {
    #[default]
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "MX")]
    Mx,
    #[serde(rename = "TXT")]
    Txt,
    #[serde(rename = "SRV")]
    Srv,
    #[serde(rename = "NS")]
    Ns,
    #[serde(rename = "SOA")]
    Soa,
    #[serde(rename = "PTR")]
    Ptr,
}

impl QueryType {
    fn record_type(self) -> RecordType {
        match self {
            QueryType::A => RecordType::A,
            QueryType::Aaaa => RecordType::AAAA,
            QueryType::Cname => RecordType::CNAME,
            QueryType::Mx => RecordType::MX,
            QueryType::Txt => RecordType::TXT,
            QueryType::Srv => RecordType::SRV,
            QueryType::Ns => RecordType::NS,
            QueryType::Soa => RecordType::SOA,
            QueryType::Ptr => RecordType::PTR,
        }
    }
}

/// How the query travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DnsTransport {
    /// UDP, asked again over TCP when the answer is truncated.
    #[default]
    Udp,
    /// TCP only.
    Tcp,
}

/// A response code (RFC 1035, 2136), by its usual name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Rcode {
    Noerror,
    Formerr,
    Servfail,
    Nxdomain,
    Notimp,
    Refused,
    Yxdomain,
    Yxrrset,
    Nxrrset,
    Notauth,
    Notzone,
}

impl Rcode {
    fn code(self) -> u16 {
        match self {
            Rcode::Noerror => 0,
            Rcode::Formerr => 1,
            Rcode::Servfail => 2,
            Rcode::Nxdomain => 3,
            Rcode::Notimp => 4,
            Rcode::Refused => 5,
            Rcode::Yxdomain => 6,
            Rcode::Yxrrset => 7,
            Rcode::Nxrrset => 8,
            Rcode::Notauth => 9,
            Rcode::Notzone => 10,
        }
    }
}

/// Why a `dns` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DnsError {
    #[error("invalid \"query_name\" {0:?}: {1}")]
    QueryName(String, String),
    #[error("invalid \"server\": {0}")]
    Server(#[from] crate::core::target::HostPortParseError),
    #[error("\"valid_rcodes\" must not be empty")]
    NoRcodes,
    #[error("\"dnssec\" needs \"edns\"")]
    DnssecWithoutEdns,
    #[error("{0}: {1}")]
    Regex(String, PatternError),
    #[error("\"expect\" has {0:?}, which is not an {1} address")]
    ExpectAddress(String, &'static str),
}

/// A built `dns` probe: the query message ready to send, the server and the checks.
#[derive(Debug)]
pub(crate) struct DnsProbe {
    query: Message,
    record_type: RecordType,
    /// `None`: the system resolver's, read at each run (resolv.conf may change).
    server: Option<(String, u16)>,
    transport: DnsTransport,
    dnssec: bool,
    valid_rcodes: Vec<u16>,
    checks: [(&'static str, Checks); 3],
    expect: Option<Vec<String>>,
}

/// One section's compiled regex checks.
#[derive(Debug, Default)]
struct Checks {
    matches: Vec<Regex>,
    all_match: Vec<Regex>,
    not_matches: Vec<Regex>,
    none_matches: Vec<Regex>,
}

impl Checks {
    fn compile(section: &str, c: &RrChecks) -> Result<Checks, DnsError> {
        let list = |key: &str, res: &[String]| {
            res.iter()
                .map(|r| {
                    patterns::compile(r)
                        .map_err(|e| DnsError::Regex(format!("\"{section}.{key}\" {r:?}"), e))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Checks {
            matches: list("fail_if_matches_regexp", &c.fail_if_matches_regexp)?,
            all_match: list("fail_if_all_match_regexp", &c.fail_if_all_match_regexp)?,
            not_matches: list("fail_if_not_matches_regexp", &c.fail_if_not_matches_regexp)?,
            none_matches: list(
                "fail_if_none_matches_regexp",
                &c.fail_if_none_matches_regexp,
            )?,
        })
    }

    /// The first check `rrs` (one section's records in text form) fails, as a sentence.
    fn failure(&self, section: &str, rrs: &[String]) -> Option<String> {
        for re in &self.matches {
            if let Some(rr) = rrs.iter().find(|rr| re.is_match(rr)) {
                return Some(format!("{section} record {rr:?} matches {:?}", re.as_str()));
            }
        }
        for re in &self.all_match {
            if !rrs.is_empty() && rrs.iter().all(|rr| re.is_match(rr)) {
                return Some(format!("every {section} record matches {:?}", re.as_str()));
            }
        }
        for re in &self.not_matches {
            if let Some(rr) = rrs.iter().find(|rr| !re.is_match(rr)) {
                return Some(format!(
                    "{section} record {rr:?} does not match {:?}",
                    re.as_str()
                ));
            }
        }
        for re in &self.none_matches {
            if !rrs.iter().any(|rr| re.is_match(rr)) {
                return Some(format!(
                    "no {section} record matches {:?} ({} records)",
                    re.as_str(),
                    rrs.len()
                ));
            }
        }
        None
    }
}

/// The `expect` list as the answer's data will read: addresses in their canonical form
/// (`2001:db8:0:0::1` is `2001:db8::1`), so that any spelling of the same address matches.
fn expected(list: &[String], record_type: RecordType) -> Result<Vec<String>, DnsError> {
    list.iter()
        .map(|e| match record_type {
            RecordType::A => e
                .trim()
                .parse::<std::net::Ipv4Addr>()
                .map(|a| a.to_string())
                .map_err(|_| DnsError::ExpectAddress(e.clone(), "IPv4")),
            RecordType::AAAA => e
                .trim()
                .parse::<std::net::Ipv6Addr>()
                .map(|a| a.to_string())
                .map_err(|_| DnsError::ExpectAddress(e.clone(), "IPv6")),
            _ => Ok(e.clone()),
        })
        .collect()
}

/// `host:port`, or `host` alone (an IPv6 address too) for port 53.
fn server_address(text: &str) -> Result<(String, u16), crate::core::target::HostPortParseError> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok((ip.to_string(), 53));
    }
    if text.contains(':') {
        return crate::core::target::HostPort::parse(text).map(|a| (a.host, a.port));
    }
    if text.is_empty() {
        return Err(crate::core::target::HostPortParseError::NoHost(
            text.to_string(),
        ));
    }
    Ok((text.to_string(), 53))
}

impl ProbeKind for DnsSpec {
    const KIND: Kind = Kind::Dns;
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    const FAMILIES: &'static [KindFamily] = &[RCODE, ANSWER_RRS, AUTHORITY_RRS, ADDITIONAL_RRS];
    type Probe = DnsProbe;
    type Error = DnsError;

    fn build(&self) -> Result<DnsProbe, DnsError> {
        let name_error = |e: String| DnsError::QueryName(self.query_name.clone(), e);
        if self.query_name.trim().is_empty() {
            return Err(name_error("empty".into()));
        }
        let mut name =
            Name::from_utf8(self.query_name.trim()).map_err(|e| name_error(e.to_string()))?;
        name.set_fqdn(true);
        if self.valid_rcodes.is_empty() {
            return Err(DnsError::NoRcodes);
        }
        if self.dnssec && !self.edns {
            return Err(DnsError::DnssecWithoutEdns);
        }
        let server = self.server.as_deref().map(server_address).transpose()?;
        let record_type = self.query_type.record_type();
        // The id is set at each run; everything else is the same every time.
        let mut query = Message::query();
        query.add_query(Query::query(name, record_type));
        query.metadata.recursion_desired = self.recursion_desired;
        if self.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_UDP_SIZE);
            edns.set_dnssec_ok(self.dnssec);
            query.set_edns(edns);
        }
        Ok(DnsProbe {
            query,
            record_type,
            server,
            transport: self.transport,
            dnssec: self.dnssec,
            valid_rcodes: self.valid_rcodes.iter().map(|r| r.code()).collect(),
            checks: [
                (
                    "answer",
                    Checks::compile("validate_answer_rrs", &self.validate_answer_rrs)?,
                ),
                (
                    "authority",
                    Checks::compile("validate_authority_rrs", &self.validate_authority_rrs)?,
                ),
                (
                    "additional",
                    Checks::compile("validate_additional_rrs", &self.validate_additional_rrs)?,
                ),
            ],
            expect: self
                .expect
                .as_deref()
                .map(|e| expected(e, record_type))
                .transpose()?,
        })
    }

    /// Another server (`host:port`, or `host` for port 53), asked the same question.
    fn retarget(&self, target: &str) -> Result<Self, RetargetError> {
        let (host, port) = server_address(target)?;
        let server = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(DnsSpec {
            server: Some(server),
            ..self.clone()
        })
    }
}

impl Probe for DnsProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        let (host, port) = match &self.server {
            Some((h, p)) => (h.clone(), *p),
            None => (text::system_nameserver().await?, 53),
        };
        // The first address only: a resolver's stub would try the next after a timeout,
        // but a probe reports the one it asked.
        let addr = resolve(&host, port, trace)
            .await?
            .first()
            .copied()
            .ok_or_else(|| ProbeError::new(Reason::Dns, format!("{host:?} has no addresses")))?;
        let mut query = self.query.clone();
        query.metadata.id = rand_id();
        let (answer, transport) = exchange::exchange(&query, addr, self.transport, trace).await?;
        let rcode = u16::from(answer.metadata.response_code);
        let additionals = answer.additionals.len();
        trace.observe(Observation::Samples(vec![
            RCODE.sample(f64::from(rcode)),
            ANSWER_RRS.sample(answer.answers.len() as f64),
            AUTHORITY_RRS.sample(answer.authorities.len() as f64),
            ADDITIONAL_RRS.sample(additionals as f64),
        ]));
        let mut facts = vec![
            ("rcode", answer.metadata.response_code.to_str().to_string()),
            ("answers", answer.answers.len().to_string()),
            ("transport", transport.to_string()),
        ];
        if !self.valid_rcodes.contains(&rcode) {
            let reason = match rcode {
                0 => Reason::Expectation,
                2 => Reason::ServerError,
                3 => Reason::NotFound,
                5 => Reason::Forbidden,
                _ => Reason::Protocol,
            };
            return Err(ProbeError::new(
                reason,
                format!(
                    "{addr} answered {} ({rcode}), not a valid rcode",
                    text::rcode_name(rcode)
                ),
            ));
        }
        if self.dnssec && !answer.metadata.authentic_data {
            return Err(ProbeError::new(
                Reason::Expectation,
                format!("{addr} did not set the AD bit: the answer is not DNSSEC-validated"),
            ));
        }
        let sections = [&answer.answers, &answer.authorities, &answer.additionals];
        for ((section, checks), records) in self.checks.iter().zip(sections) {
            let rrs: Vec<String> = records.iter().map(text::record).collect();
            if let Some(why) = checks.failure(section, &rrs) {
                return Err(ProbeError::new(Reason::Assertion, why));
            }
        }
        if let Some(expect) = &self.expect {
            let mut got: Vec<String> = answer
                .answers
                .iter()
                .filter(|r| r.record_type() == self.record_type)
                .map(|r| text::rdata(&r.data))
                .collect();
            got.sort();
            let mut want = expect.clone();
            want.sort();
            if got != want {
                return Err(ProbeError::new(
                    Reason::Assertion,
                    format!(
                        "the answer's {} records are {got:?}, expected {want:?}",
                        self.record_type
                    ),
                ));
            }
        }
        if self.dnssec {
            facts.push(("dnssec", "authenticated".into()));
        }
        Ok(Outcome { facts })
    }
}

/// A query id nobody on the path can guess (it is what matches an answer to its query).
fn rand_id() -> u16 {
    let mut b = [0u8; 2];
    // ring's system randomness; the fallback still changes from run to run.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        return nanos as u16;
    }
    u16::from_be_bytes(b)
}

#[cfg(test)]
mod tests;
