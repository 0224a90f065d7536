//! ICMP echo packets (RFC 792, RFC 4443): built and parsed by hand, they are 8 bytes of
//! header and a payload.

/// Echo request and reply types of ICMPv4 and ICMPv6.
const V4_REQUEST: u8 = 8;
const V4_REPLY: u8 = 0;
const V6_REQUEST: u8 = 128;
const V6_REPLY: u8 = 129;

/// The payload after the 8-byte header: recognisable in a capture, and compared on return.
const PAYLOAD: &[u8] = b"pathwatch icmp probe 0123456789abcdefghijklmnopqrstuvw";

/// An echo request with `id` and `seq`. The ICMPv4 checksum is set here (a raw socket sends
/// the bytes as they are); the kernel computes ICMPv6's over the pseudo-header itself.
pub(crate) fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + PAYLOAD.len());
    p.push(if v6 { V6_REQUEST } else { V4_REQUEST });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    if !v6 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of
/// the 16-bit words.
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP message as received.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Received<'a> {
    pub(crate) kind: u8,
    pub(crate) code: u8,
    pub(crate) id: u16,
    pub(crate) seq: u16,
    pub(crate) payload: &'a [u8],
    /// The TTL of the IPv4 header a raw socket delivers with the message.
    pub(crate) ttl: Option<u8>,
}

/// Parses what a socket delivered: with `ip_header` (a raw IPv4 socket) an IPv4 header
/// comes first. `None` when it is too short to be an echo message.
pub(crate) fn parse(data: &[u8], v6: bool, ip_header: bool) -> Option<Received<'_>> {
    let (icmp, ttl) = if ip_header && !v6 {
        let first = *data.first()?;
        if first >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(first & 0x0f) * 4;
        (data.get(ihl..)?, Some(*data.get(8)?))
    } else {
        (data, None)
    };
    if icmp.len() < 8 {
        return None;
    }
    Some(Received {
        kind: icmp[0],
        code: icmp[1],
        id: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        payload: &icmp[8..],
        ttl,
    })
}

impl Received<'_> {
    /// Whether this is the reply to `request` (`id` is ours only on a raw socket: a ping
    /// socket's identifier is the kernel's, and the kernel filters by it).
    pub(crate) fn answers(
        &self,
        v6: bool,
        kernel_id: bool,
        id: u16,
        seq: u16,
        request: &[u8],
    ) -> bool {
        let reply = if v6 { V6_REPLY } else { V4_REPLY };
        self.kind == reply
            && self.code == 0
            && (kernel_id || self.id == id)
            && self.seq == seq
            && request.get(8..) == Some(self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_a_valid_checksum() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        // A packet with its checksum in place sums to zero.
        assert_eq!(checksum(&p), 0);
        // RFC 1071's example words.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(checksum(&[0xff]), !0xff00);
        let v6 = echo_request(true, 1, 2);
        assert_eq!((v6[0], &v6[2..4]), (128, &[0u8, 0][..]));
    }

    #[test]
    fn replies_are_matched_by_type_id_sequence_and_payload() {
        let request = echo_request(false, 9, 3);
        let mut reply = request.clone();
        reply[0] = 0;
        // With a 20-byte IPv4 header, TTL 61.
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 61, 1, 0, 0];
        ip.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        ip.extend_from_slice(&reply);
        let r = parse(&ip, false, true).unwrap();
        assert_eq!((r.kind, r.id, r.seq, r.ttl), (0, 9, 3, Some(61)));
        assert!(r.answers(false, false, 9, 3, &request));
        assert!(!r.answers(false, false, 10, 3, &request));
        assert!(r.answers(false, true, 10, 3, &request));
        assert!(!r.answers(false, true, 10, 4, &request));
        // Our own request, seen by a raw socket on loopback, is not the reply.
        let own = parse(&request, false, false).unwrap();
        assert!(!own.answers(false, false, 9, 3, &request));
        // An ICMPv6 reply has no IP header in front.
        let mut v6 = echo_request(true, 9, 3);
        v6[0] = 129;
        let r = parse(&v6, true, true).unwrap();
        assert_eq!(r.ttl, None);
        assert!(r.answers(true, false, 9, 3, &echo_request(true, 9, 3)));
        assert_eq!(parse(&[0; 7], true, false), None);
        assert_eq!(parse(&[0x60; 40], false, true), None);
    }
}
