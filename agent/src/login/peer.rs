//! Who is on the other end of a loopback TCP connection. Unlike a Unix socket, TCP has no peer
//! credentials; on Linux the kernel's socket tables (`/proc/net/tcp`, `/proc/net/tcp6`) name the
//! uid that owns each socket, so the connecting end's row (its local address is our peer, its
//! remote address is our listener) says which user connected.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// (local address, remote address) → owning uid, for every TCP socket in a table.
pub type Owners = HashMap<(SocketAddr, SocketAddr), u32>;

/// Parses `/proc/net/tcp` or `/proc/net/tcp6` (pure; unit-tested). Rows that do not parse are
/// skipped.
#[must_use]
pub fn parse_table(text: &str) -> Owners {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let _slot = cols.next()?;
            let local = parse_addr(cols.next()?)?;
            let remote = parse_addr(cols.next()?)?;
            // st, tx:rx, tr:when, retrnsmt, then uid.
            let uid = cols.nth(4)?.parse().ok()?;
            Some(((local, remote), uid))
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): each 32-bit word is printed in the
/// kernel's byte order, the port in host order.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |h: &str| u32::from_str_radix(h, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The kernel's TCP socket tables, read once for a batch of connections.
#[must_use]
pub fn read_tables() -> Owners {
    let mut owners = Owners::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            owners.extend(parse_table(&text));
        }
    }
    owners
}

/// The uid of the process that connected from `peer` to our listener at `local`, if the tables
/// know it. An IPv4 peer may appear as an IPv4-mapped IPv6 address in `tcp6`.
#[must_use]
pub fn owner(owners: &Owners, local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    owners.get(&(peer, local)).copied().or_else(|| {
        let mapped = |a: SocketAddr| match a.ip() {
            IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
            IpAddr::V6(_) => a,
        };
        owners.get(&(mapped(peer), mapped(local))).copied()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1
   1: 0100007F:1F90 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1
   2: garbage
";

    #[test]
    fn the_connecting_end_names_the_user() {
        if cfg!(target_endian = "big") {
            return; // the sample rows are a little-endian kernel's
        }
        let owners = parse_table(TCP);
        let listener: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:41394".parse().unwrap();
        assert_eq!(owner(&owners, listener, peer), Some(1000));
        assert_eq!(owners.len(), 2, "the garbage row is skipped");
        let stranger: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(owner(&owners, listener, stranger), None);
    }

    #[test]
    fn ipv6_rows_parse() {
        if cfg!(target_endian = "big") {
            return;
        }
        let tcp6 = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:A1B2 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000  1000 0 1 1
";
        let owners = parse_table(tcp6);
        let listener: SocketAddr = "[::1]:8080".parse().unwrap();
        let peer: SocketAddr = "[::1]:41394".parse().unwrap();
        assert_eq!(owner(&owners, listener, peer), Some(1000));
    }

    #[test]
    fn a_real_connection_is_found_with_our_uid() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        if cfg!(target_os = "linux") {
            let uid = rustix::process::getuid().as_raw();
            assert_eq!(
                owner(&read_tables(), server.local_addr().unwrap(), peer),
                Some(uid)
            );
        }
        drop(client);
    }
}
