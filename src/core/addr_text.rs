//! A socket address as text, as its `Display` writes it, with IPv4 written through itoa
//! instead of `fmt`: the tcp probe writes its peer so on every run, and through `fmt` that
//! was 3.5 % of the instructions of a tcp `/probe` (callgrind, bench/history/2026-11.md),
//! for a fact only the status page shows.

use std::net::SocketAddr;

/// `a` as its `Display` writes it (`127.0.0.1:5432`, `[::1]:80`).
pub(crate) fn addr_text(a: SocketAddr) -> String {
    let SocketAddr::V4(v4) = a else {
        return a.to_string();
    };
    // The longest IPv4 address and port: "255.255.255.255:65535".
    let mut text = String::with_capacity(21);
    let mut n = itoa::Buffer::new();
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(n.format(octet));
    }
    text.push(':');
    text.push_str(n.format(v4.port()));
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_read_as_display_writes_them() {
        for a in [
            "127.0.0.1:5432",
            "0.0.0.0:1",
            "255.255.255.255:65535",
            "[::1]:80",
            "[fe80::1%2]:443",
        ] {
            let a: std::net::SocketAddr = a.parse().expect("address");
            assert_eq!(super::addr_text(a), a.to_string());
        }
    }
}
