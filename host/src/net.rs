//! What kind of address an IP is: the facts the outbound HTTP policy
//! (`runtime/http/policy.rs`) and the config's pattern check decide on.
//!
//! The source is the IANA special-purpose address registries
//! (`iana-ipv4-special-registry`, `iana-ipv6-special-registry`), plus the
//! multicast and unallocated space of the address-space registries. Each
//! registry block is one row of [`V4_BLOCKS`] or [`V6_BLOCKS`], so the
//! tables can be compared with the registries line by line; an address
//! takes the rule of the most specific row that contains it.
//!
//! How a block's class is chosen, conservatively:
//! - "Globally reachable: False" never gives `Public`.
//! - Documentation, benchmarking, discard, dummy and reserved space, and
//!   blocks that are identifiers or protocol plumbing rather than hosts,
//!   are `Reserved` (never a destination).
//! - Private-use, shared (carrier-grade NAT) and unique-local space, and
//!   anycast services answered by the nearest (local) server, are `Private`.
//! - Forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo,
//!   IPv4-compatible) are classified through the address they carry; see
//!   [`Rule`].
//! - The cloud metadata services ([`METADATA`]) are their own class,
//!   checked before everything else, in every form that carries them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address an IP is, for the address rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    /// Private-use (RFC 1918), shared address space (100.64/10), unique
    /// local (fc00::/7), site-local (fec0::/10), local-use NAT64
    /// (64:ff9b:1::/48) and anycast services answered inside or next to
    /// the operator's network.
    Private,
    LinkLocal,
    Unspecified,
    Multicast,
    /// Never a destination: documentation, benchmarking, reserved,
    /// deprecated and protocol-internal space (see the tables).
    Reserved,
    /// A cloud provider's instance metadata or host agent endpoint
    /// ([`METADATA`]): it hands out the instance's credentials.
    Metadata,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Public => "a public address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address",
            Self::Unspecified => "the unspecified address",
            Self::Multicast => "a multicast address",
            Self::Reserved => "a reserved address",
            Self::Metadata => "a cloud metadata address",
        })
    }
}

/// Cloud metadata and host-agent endpoints. They answer any process on the
/// instance with its credentials, so no module may ever reach them.
pub const METADATA: [IpAddr; 6] = [
    // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle instance metadata.
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    // AWS ECS task metadata and credentials.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    // Alibaba Cloud instance metadata.
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    // Azure WireServer (host agent; public address space).
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    // Oracle Cloud metadata (legacy address).
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),
    // AWS instance metadata over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Where an IPv6 form puts the IPv4 address it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// The last 32 bits (IPv4-mapped, IPv4-compatible, RFC 6052 /96).
    Last32,
    /// RFC 6052 /48: bits 48..64 and 72..88 (bits 64..72 are zero).
    Rfc6052At48,
    /// RFC 6052 /56: bits 56..64 and 72..96.
    Rfc6052At56,
    /// RFC 6052 /64: bits 72..104.
    Rfc6052At64,
    /// 6to4 (RFC 3056): bits 16..48, the 6to4 router's address.
    SixToFour,
    /// Teredo (RFC 4380) server: bits 32..64.
    TeredoServer,
    /// Teredo client: bits 96..128, inverted.
    TeredoClient,
}

impl Embedding {
    /// The IPv4 address `ip` carries in this position.
    pub fn extract(self, ip: Ipv6Addr) -> Ipv4Addr {
        let o = ip.octets();
        let [a, b, c, d] = match self {
            Self::Last32 => [o[12], o[13], o[14], o[15]],
            Self::Rfc6052At48 => [o[6], o[7], o[9], o[10]],
            Self::Rfc6052At56 => [o[7], o[9], o[10], o[11]],
            Self::Rfc6052At64 => [o[9], o[10], o[11], o[12]],
            Self::SixToFour => [o[2], o[3], o[4], o[5]],
            Self::TeredoServer => [o[4], o[5], o[6], o[7]],
            Self::TeredoClient => [!o[12], !o[13], !o[14], !o[15]],
        };
        Ipv4Addr::new(a, b, c, d)
    }
}

/// How a block's addresses are classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Every address of the block is of this class.
    Is(AddressClass),
    /// The block carries an IPv4 address that is where packets really go:
    /// classified exactly as that address.
    Carries(Embedding),
    /// The block is of this class whatever it carries, except that an
    /// address carrying a metadata address in any of these positions is
    /// `Metadata` (for forms whose own class is never better than the
    /// address carried, or whose position of the carried address is the
    /// operator's choice).
    CarriesAtMost(AddressClass, &'static [Embedding]),
}

/// One row of a special-purpose registry: `net/len`, name and RFC, rule.
#[derive(Debug, Clone, Copy)]
pub struct Block<A> {
    pub net: A,
    pub len: u8,
    pub name: &'static str,
    pub rule: Rule,
}

use AddressClass::{LinkLocal, Loopback, Multicast, Private, Public, Reserved, Unspecified};
use Rule::{Carries, CarriesAtMost, Is};

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, name: &'static str, rule: Rule) -> Block<u32> {
    Block {
        net: u32::from_be_bytes([a, b, c, d]),
        len,
        name,
        rule,
    }
}

const fn v6(segments: [u16; 8], len: u8, name: &'static str, rule: Rule) -> Block<u128> {
    let mut net = 0u128;
    let mut i = 0;
    while i < 8 {
        net = (net << 16) | segments[i] as u128;
        i += 1;
    }
    Block {
        net,
        len,
        name,
        rule,
    }
}

/// The IPv4 special-purpose registry, plus multicast (224/4) and the
/// default row (everything else is allocated unicast).
#[rustfmt::skip]
pub const V4_BLOCKS: &[Block<u32>] = &[
    v4(0, 0, 0, 0, 0, "allocated unicast", Is(Public)),
    v4(0, 0, 0, 0, 8, "\"This network\", RFC 791", Is(Unspecified)),
    v4(0, 0, 0, 0, 32, "\"This host on this network\", RFC 1122", Is(Unspecified)),
    v4(10, 0, 0, 0, 8, "Private-Use, RFC 1918", Is(Private)),
    v4(100, 64, 0, 0, 10, "Shared Address Space, RFC 6598", Is(Private)),
    v4(127, 0, 0, 0, 8, "Loopback, RFC 1122", Is(Loopback)),
    v4(169, 254, 0, 0, 16, "Link Local, RFC 3927", Is(LinkLocal)),
    v4(172, 16, 0, 0, 12, "Private-Use, RFC 1918", Is(Private)),
    // Not usable except through a more specific entry (RFC 6890 2.2.2).
    v4(192, 0, 0, 0, 24, "IETF Protocol Assignments, RFC 6890", Is(Reserved)),
    // DS-Lite B4/AFTR link addresses: protocol plumbing, not hosts.
    v4(192, 0, 0, 0, 29, "IPv4 Service Continuity Prefix, RFC 7335", Is(Reserved)),
    v4(192, 0, 0, 8, 32, "IPv4 dummy address, RFC 7600", Is(Reserved)),
    // Globally reachable in the registry, but anycast answered by the
    // nearest server: the site's or the ISP's NAT, so Private.
    v4(192, 0, 0, 9, 32, "Port Control Protocol Anycast, RFC 7723", Is(Private)),
    v4(192, 0, 0, 10, 32, "TURN Anycast, RFC 8155", Is(Private)),
    // Only for discovering the NAT64 prefix (ipv4only.arpa).
    v4(192, 0, 0, 170, 32, "NAT64/DNS64 Discovery, RFC 8880", Is(Reserved)),
    v4(192, 0, 0, 171, 32, "NAT64/DNS64 Discovery, RFC 8880", Is(Reserved)),
    v4(192, 0, 2, 0, 24, "Documentation (TEST-NET-1), RFC 5737", Is(Reserved)),
    // Globally reachable DNS sinks and relays: public.
    v4(192, 31, 196, 0, 24, "AS112-v4, RFC 7535", Is(Public)),
    v4(192, 52, 193, 0, 24, "AMT, RFC 7450", Is(Public)),
    // Deprecated: whichever relay answers the anycast is unknown.
    v4(192, 88, 99, 0, 24, "Deprecated (6to4 Relay Anycast), RFC 7526", Is(Reserved)),
    v4(192, 168, 0, 0, 16, "Private-Use, RFC 1918", Is(Private)),
    v4(192, 175, 48, 0, 24, "Direct Delegation AS112 Service, RFC 7534", Is(Public)),
    v4(198, 18, 0, 0, 15, "Benchmarking, RFC 2544", Is(Reserved)),
    v4(198, 51, 100, 0, 24, "Documentation (TEST-NET-2), RFC 5737", Is(Reserved)),
    v4(203, 0, 113, 0, 24, "Documentation (TEST-NET-3), RFC 5737", Is(Reserved)),
    v4(224, 0, 0, 0, 4, "Multicast, RFC 5771", Is(Multicast)),
    v4(240, 0, 0, 0, 4, "Reserved, RFC 1112", Is(Reserved)),
    v4(255, 255, 255, 255, 32, "Limited Broadcast, RFC 919", Is(Reserved)),
];

/// The NAT64 local-use prefix may be cut into longer prefixes (RFC 6052
/// 2.2): the carried address can sit at any of these positions.
const LOCAL_NAT64: &[Embedding] = &[
    Embedding::Rfc6052At48,
    Embedding::Rfc6052At56,
    Embedding::Rfc6052At64,
    Embedding::Last32,
];

/// Teredo's server and client addresses.
const TEREDO: &[Embedding] = &[Embedding::TeredoServer, Embedding::TeredoClient];

/// The IPv6 special-purpose registry, plus global unicast (2000::/3),
/// site-local, multicast and the default row (outside 2000::/3 everything
/// unassigned is reserved by the IETF).
#[rustfmt::skip]
pub const V6_BLOCKS: &[Block<u128>] = &[
    v6([0; 8], 0, "Reserved by IETF (outside 2000::/3), RFC 4291", Is(Reserved)),
    v6([0; 8], 128, "Unspecified Address, RFC 4291", Is(Unspecified)),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "Loopback Address, RFC 4291", Is(Loopback)),
    // Deprecated (RFC 4291 2.5.5.1); a host may still tunnel it to the
    // IPv4 address it carries, so never a destination.
    v6([0; 8], 96, "IPv4-Compatible (deprecated), RFC 4291", CarriesAtMost(Reserved, &[Embedding::Last32])),
    // A dual-stack socket sends these to the IPv4 address itself.
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, "IPv4-mapped Address, RFC 4291", Carries(Embedding::Last32)),
    // A NAT64 on the path sends these to the IPv4 address itself.
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, "IPv4-IPv6 Translat., RFC 6052", Carries(Embedding::Last32)),
    // Not globally reachable: a translator inside the operator's domain,
    // which may reach private IPv4 space, hence Private. The operator
    // picks the prefix length, so a metadata address is looked for at
    // every position; loopback and link-local IPv4 are not forwarded by
    // a translator (RFC 1122, RFC 3927 2.7).
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "IPv4-IPv6 Translat. (local-use), RFC 8215", CarriesAtMost(Private, LOCAL_NAT64)),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "Discard-Only Address Block, RFC 6666", Is(Reserved)),
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, "Dummy IPv6 Prefix, RFC 9780", Is(Reserved)),
    v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, "Global Unicast, RFC 4291", Is(Public)),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "IETF Protocol Assignments, RFC 2928", Is(Reserved)),
    // A NAT-traversal tunnel: reaching it needs a Teredo client, and the
    // client address is whatever sits behind the client's NAT.
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "TEREDO, RFC 4380", CarriesAtMost(Reserved, TEREDO)),
    // Anycast answered by the nearest server (see 192.0.0.9).
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, "Port Control Protocol Anycast, RFC 7723", Is(Private)),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, "TURN Anycast, RFC 8155", Is(Private)),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, "DNS-SD SRP Anycast, RFC 9665", Is(Private)),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, "Benchmarking, RFC 5180", Is(Reserved)),
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, "AMT, RFC 7450", Is(Public)),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, "AS112-v6, RFC 7535", Is(Public)),
    v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, "Deprecated (ORCHID), RFC 4843", Is(Reserved)),
    // Identifiers, not locators: not routable at the IP layer.
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, "ORCHIDv2, RFC 7343", Is(Reserved)),
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28, "Drone Remote ID DETs, RFC 9374", Is(Reserved)),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "Documentation, RFC 3849", Is(Reserved)),
    // Deprecated (RFC 7526); packets go first to the 6to4 router at the
    // IPv4 address carried, so that address decides.
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "6to4, RFC 3056", Carries(Embedding::SixToFour)),
    v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48, "Direct Delegation AS112 Service, RFC 7534", Is(Public)),
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "Documentation, RFC 9637", Is(Reserved)),
    // SIDs inside one segment-routing domain, not hosts.
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "Segment Routing (SRv6) SIDs, RFC 9602", Is(Reserved)),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "Unique-Local, RFC 4193", Is(Private)),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "Link-Local Unicast, RFC 4291", Is(LinkLocal)),
    // Deprecated (RFC 3879) but still routed inside some sites.
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "Site-Local (deprecated), RFC 3879", Is(Private)),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "Multicast, RFC 4291", Is(Multicast)),
];

/// The most specific row of `blocks` containing `addr` (u32 for IPv4,
/// u128 for IPv6); the tables have a /0 row, so there always is one.
fn lookup<T>(blocks: &'static [Block<T>], addr: T) -> &'static Block<T>
where
    T: Copy
        + PartialEq
        + std::ops::BitAnd<Output = T>
        + std::ops::Shl<u32, Output = T>
        + std::ops::Not<Output = T>
        + Default,
{
    blocks
        .iter()
        .filter(|b| addr & mask::<T>(b.len) == b.net)
        .max_by_key(|b| b.len)
        .expect("the table has a default row")
}

/// The network mask of a prefix length, for u32 or u128.
fn mask<T>(len: u8) -> T
where
    T: Copy + std::ops::Shl<u32, Output = T> + std::ops::Not<Output = T> + Default,
{
    let bits = (std::mem::size_of::<T>() * 8) as u32;
    let ones = !T::default();
    if len == 0 {
        T::default()
    } else {
        ones << (bits - u32::from(len))
    }
}

/// Classifies an address.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    if METADATA.contains(&IpAddr::V4(ip)) {
        return AddressClass::Metadata;
    }
    match lookup(V4_BLOCKS, u32::from(ip)).rule {
        Is(class) => class,
        // No IPv4 row carries another address.
        Carries(_) | CarriesAtMost(..) => AddressClass::Reserved,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if METADATA.contains(&IpAddr::V6(ip)) {
        return AddressClass::Metadata;
    }
    match lookup(V6_BLOCKS, u128::from(ip)).rule {
        Is(class) => class,
        Carries(at) => classify_v4(at.extract(ip)),
        CarriesAtMost(class, positions) => {
            if positions
                .iter()
                .any(|at| classify_v4(at.extract(ip)) == AddressClass::Metadata)
            {
                AddressClass::Metadata
            } else {
                class
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressClass::Metadata;

    fn check(cases: &[(&str, AddressClass)]) {
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(a, want)| {
                let got = classify(a.parse().unwrap());
                (got != *want).then(|| format!("{a}: {got:?}, want {want:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn table_rows_are_well_formed() {
        for b in V4_BLOCKS {
            assert!(b.len <= 32, "{}", b.name);
            assert_eq!(b.net & !mask::<u32>(b.len), 0, "host bits set: {}", b.name);
        }
        for b in V6_BLOCKS {
            assert!(b.len <= 128, "{}", b.name);
            assert_eq!(b.net & !mask::<u128>(b.len), 0, "host bits set: {}", b.name);
        }
        let mut v4: Vec<_> = V4_BLOCKS.iter().map(|b| (b.net, b.len)).collect();
        let mut v6: Vec<_> = V6_BLOCKS.iter().map(|b| (b.net, b.len)).collect();
        let (n4, n6) = (v4.len(), v6.len());
        v4.sort();
        v4.dedup();
        v6.sort();
        v6.dedup();
        assert_eq!((v4.len(), v6.len()), (n4, n6), "a block is listed twice");
        assert_eq!(mask::<u32>(0), 0);
        assert_eq!(mask::<u32>(32), u32::MAX);
        assert_eq!(mask::<u128>(10), 0xffc0 << 112);
    }

    /// One address inside each IPv4 block, and the addresses just outside
    /// its boundaries where the neighbour differs.
    #[test]
    fn classifies_every_ipv4_special_purpose_block() {
        check(&[
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            // 0/8
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("0.255.255.255", Unspecified),
            ("1.0.0.0", Public),
            // 10/8
            ("9.255.255.255", Public),
            ("10.0.0.0", Private),
            ("10.255.255.255", Private),
            ("11.0.0.0", Public),
            // 100.64/10
            ("100.63.255.255", Public),
            ("100.64.0.0", Private),
            ("100.127.255.255", Private),
            ("100.128.0.0", Public),
            // 127/8
            ("126.255.255.255", Public),
            ("127.0.0.1", Loopback),
            ("127.255.255.255", Loopback),
            ("128.0.0.0", Public),
            // 169.254/16
            ("169.253.255.255", Public),
            ("169.254.0.1", LinkLocal),
            ("169.254.255.255", LinkLocal),
            ("169.255.0.0", Public),
            // 172.16/12
            ("172.15.255.255", Public),
            ("172.16.0.0", Private),
            ("172.31.255.255", Private),
            ("172.32.0.0", Public),
            // 192.0.0/24 and its entries
            ("191.255.255.255", Public),
            ("192.0.0.0", Reserved),
            ("192.0.0.7", Reserved),
            ("192.0.0.8", Reserved),
            ("192.0.0.9", Private),
            ("192.0.0.10", Private),
            ("192.0.0.11", Reserved),
            ("192.0.0.170", Reserved),
            ("192.0.0.171", Reserved),
            ("192.0.0.255", Reserved),
            ("192.0.1.0", Public),
            // 192.0.2/24
            ("192.0.2.0", Reserved),
            ("192.0.2.255", Reserved),
            ("192.0.3.0", Public),
            // 192.31.196/24, 192.52.193/24 (globally reachable)
            ("192.31.196.1", Public),
            ("192.52.193.1", Public),
            // 192.88.99/24
            ("192.88.98.255", Public),
            ("192.88.99.1", Reserved),
            ("192.88.100.0", Public),
            // 192.168/16
            ("192.167.255.255", Public),
            ("192.168.0.0", Private),
            ("192.168.255.255", Private),
            ("192.169.0.0", Public),
            // 192.175.48/24
            ("192.175.48.1", Public),
            // 198.18/15
            ("198.17.255.255", Public),
            ("198.18.0.0", Reserved),
            ("198.19.255.255", Reserved),
            ("198.20.0.0", Public),
            // 198.51.100/24
            ("198.51.99.255", Public),
            ("198.51.100.7", Reserved),
            ("198.51.101.0", Public),
            // 203.0.113/24
            ("203.0.112.255", Public),
            ("203.0.113.7", Reserved),
            ("203.0.114.0", Public),
            // 224/4, 240/4, broadcast
            ("223.255.255.255", Public),
            ("224.0.0.0", Multicast),
            ("239.255.255.255", Multicast),
            ("240.0.0.0", Reserved),
            ("255.255.255.254", Reserved),
            ("255.255.255.255", Reserved),
        ]);
    }

    #[test]
    fn classifies_every_ipv6_special_purpose_block() {
        check(&[
            ("2606:4700::1111", Public),
            ("2a00:1450::1", Public),
            ("::", Unspecified),
            ("::1", Loopback),
            ("::2", Reserved),
            // outside 2000::/3 and not otherwise listed
            ("1fff:ffff::1", Reserved),
            ("4000::1", Reserved),
            ("::1:0:0:1", Reserved),
            // 100::/64, 100:0:0:1::/64
            ("100::1", Reserved),
            ("100:0:0:1::1", Reserved),
            ("100:0:0:2::1", Reserved),
            // 2001::/23 and its entries
            ("2001:1::1", Private),
            ("2001:1::2", Private),
            ("2001:1::3", Private),
            ("2001:1::4", Reserved),
            ("2001:2::1", Reserved),
            ("2001:2:1::1", Reserved),
            ("2001:3::1", Public),
            ("2001:4:112::1", Public),
            ("2001:4:113::1", Reserved),
            ("2001:10::1", Reserved),
            ("2001:20::1", Reserved),
            ("2001:30::1", Reserved),
            ("2001:1ff:ffff::1", Reserved),
            ("2001:200::1", Public),
            ("2001:4860::8888", Public),
            // 2001:db8::/32
            ("2001:db7:ffff::1", Public),
            ("2001:db8::1", Reserved),
            ("2001:db8:ffff::1", Reserved),
            ("2001:db9::1", Public),
            // 2620:4f:8000::/48
            ("2620:4f:8000::1", Public),
            // 3fff::/20
            ("3ffe:ffff::1", Public),
            ("3fff::1", Reserved),
            ("3fff:fff::1", Reserved),
            ("3fff:1000::1", Public),
            // 5f00::/16
            ("5f00::1", Reserved),
            // fc00::/7
            ("fbff::1", Reserved),
            ("fc00::1", Private),
            ("fdff:ffff::1", Private),
            // fe80::/10, fec0::/10
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", Private),
            ("feff::1", Private),
            // ff00::/8
            ("ff02::1", Multicast),
            ("ff0e::1", Multicast),
        ]);
    }

    #[test]
    fn embedded_ipv4_is_classified_by_what_it_carries() {
        check(&[
            // IPv4-mapped
            ("::ffff:8.8.8.8", Public),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:169.254.1.1", LinkLocal),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:192.0.2.1", Reserved),
            ("::ffff:224.0.0.1", Multicast),
            // IPv4-compatible (deprecated): never
            ("::8.8.8.8", Reserved),
            ("::127.0.0.1", Reserved),
            ("::10.0.0.1", Reserved),
            // NAT64 well-known prefix
            ("64:ff9b::808:808", Public),
            ("64:ff9b::10.0.0.1", Private),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:101", LinkLocal),
            ("64:ff9b::192.0.0.8", Reserved),
            ("64:ff9b::1:0:808:808", Reserved),
            // NAT64 local-use: private whatever it carries
            ("64:ff9b:1::808:808", Private),
            ("64:ff9b:1::10.0.0.1", Private),
            ("64:ff9b:1:ffff::1", Private),
            ("64:ff9b:2::808:808", Reserved),
            // 6to4 (the 6to4 router's IPv4 in bits 16..48)
            ("2002:808:808::1", Public),
            ("2002:a00:1::1", Private),
            ("2002:c0a8:101::1", Private),
            ("2002:7f00:1::1", Loopback),
            ("2002:a9fe:101::", LinkLocal),
            ("2002:c000:201::1", Reserved),
            // Teredo: never
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reserved),
            ("2001:0:808:808::f7f7:f7f7", Reserved),
        ]);
    }

    #[test]
    fn metadata_addresses_are_their_own_class_in_every_form() {
        for ip in METADATA {
            assert_eq!(classify(ip), Metadata, "{ip}");
        }
        check(&[
            // the list, written out
            ("169.254.169.254", Metadata),
            ("169.254.170.2", Metadata),
            ("100.100.100.200", Metadata),
            ("168.63.129.16", Metadata),
            ("192.0.0.192", Metadata),
            ("fd00:ec2::254", Metadata),
            // neighbours are not
            ("169.254.169.253", LinkLocal),
            ("169.254.170.3", LinkLocal),
            ("100.100.100.201", Private),
            ("168.63.129.17", Public),
            ("192.0.0.193", Reserved),
            ("fd00:ec2::253", Private),
            // IPv4-mapped and -compatible
            ("::ffff:169.254.169.254", Metadata),
            ("::ffff:168.63.129.16", Metadata),
            ("::ffff:100.100.100.200", Metadata),
            ("::169.254.169.254", Metadata),
            ("::192.0.0.192", Metadata),
            // NAT64, well-known and local-use at every RFC 6052 length
            ("64:ff9b::169.254.169.254", Metadata),
            ("64:ff9b::169.254.170.2", Metadata),
            ("64:ff9b:1::169.254.169.254", Metadata),
            ("64:ff9b:1:a9fe:a9:fe00::", Metadata),
            ("64:ff9b:1:a9:fe:a9fe::", Metadata),
            ("64:ff9b:1:0:a9:fea9:fe00:0", Metadata),
            ("64:ff9b:1::a83f:8110", Metadata),
            // 6to4
            ("2002:a9fe:a9fe::1", Metadata),
            ("2002:a83f:8110::", Metadata),
            ("2002:6464:64c8::1", Metadata),
            // Teredo server and (inverted) client
            ("2001:0:a9fe:a9fe::1", Metadata),
            ("2001:0:808:808::5601:5601", Metadata),
        ]);
    }
}
