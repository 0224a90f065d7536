//! Records in text form, as the checks and `expect` see them, and the system's nameserver.
//!
//! A record reads `name\tTTL\tclass\ttype\tdata` (blackbox_exporter's form, from Go's
//! miekg/dns, so its users' regexes carry over); the data is hickory-proto's presentation
//! form, except TXT, whose strings are quoted and escaped as in a zone file, so that the
//! strings of one record stay apart.

use crate::probe::{ProbeError, Reason};
use hickory_proto::rr::{RData, Record};

/// A record in text form.
pub(crate) fn record(r: &Record) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        r.name,
        r.ttl,
        r.dns_class,
        r.record_type(),
        rdata(&r.data)
    )
}

/// A record's data in text form.
pub(crate) fn rdata(data: &RData) -> String {
    match data {
        RData::TXT(txt) => {
            let strings: Vec<String> = txt.txt_data.iter().map(|s| quoted(s)).collect();
            strings.join(" ")
        }
        other => other.to_string(),
    }
}

/// A character-string as a zone file writes it: in quotes, `"` and `\` escaped, bytes
/// outside printable ASCII as `\DDD`.
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// The usual name of a response code.
pub(crate) fn rcode_name(code: u16) -> String {
    let name = match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        other => return format!("RCODE{other}"),
    };
    name.to_string()
}

const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The first `nameserver` of /etc/resolv.conf, read at each run as the C library does when
/// the file changes.
pub(crate) async fn system_nameserver() -> Result<String, ProbeError> {
    let text = tokio::fs::read_to_string(RESOLV_CONF)
        .await
        .map_err(|e| ProbeError::new(Reason::Dns, format!("reading {RESOLV_CONF}: {e}")))?;
    first_nameserver(&text)
        .ok_or_else(|| ProbeError::new(Reason::Dns, format!("{RESOLV_CONF} names no nameserver")))
}

/// The first `nameserver` line's address (an IPv6 zone, `%eth0`, dropped).
pub(crate) fn first_nameserver(resolv_conf: &str) -> Option<String> {
    resolv_conf.lines().find_map(|line| {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next()? != "nameserver" {
            return None;
        }
        let addr = words.next()?;
        let addr = addr.split('%').next().unwrap_or(addr);
        addr.parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| ip.to_string())
    })
}
