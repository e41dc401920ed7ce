//! Capture reader and writer tests: both formats and byte orders, the link layers, TCP
//! reassembly and SCTP DATA chunks, all on files built here.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::diameter::{diameter_messages, looks_like_diameter, Transport};
use super::net::{self, ethernet_ipv4_tcp, tcp_flags, TcpFlow};
use super::*;
use crate::codec::{codes, ApplicationId, Avp, CommandCode, Message};

fn client() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000)
}

fn server() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 3868)
}

fn dwr(hbh: u32) -> Vec<u8> {
    Message::request(
        CommandCode::DEVICE_WATCHDOG,
        ApplicationId::COMMON,
        false,
        hbh,
        hbh,
    )
    .with(Avp::identity(codes::ORIGIN_HOST, "peer.example.org"))
    .with(Avp::identity(codes::ORIGIN_REALM, "example.org"))
    .encode()
}

fn pcap_of(link: LinkType, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), link).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(1_700_000_000_000_000_000 + i as u64 * 1_000, f)
            .unwrap();
    }
    w.into_inner()
}

#[test]
fn reads_back_what_the_writer_wrote() {
    let file = pcap_of(LinkType::ETHERNET, &[vec![1, 2, 3], vec![4; 70]]);
    let packets = read_packets(&file).unwrap();
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[0].number, 1);
    assert_eq!(packets[0].data, &[1, 2, 3]);
    assert_eq!(packets[1].link_type, LinkType::ETHERNET);
    assert_eq!(packets[1].timestamp_ns, Some(1_700_000_000_000_001_000));
}

/// A big-endian microsecond pcap, as written on SPARC or by some tools.
#[test]
fn reads_big_endian_microsecond_pcap() {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2c3d4u32.to_be_bytes());
    f.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&65535u32.to_be_bytes());
    f.extend_from_slice(&113u32.to_be_bytes());
    f.extend_from_slice(&7u32.to_be_bytes()); // seconds
    f.extend_from_slice(&5u32.to_be_bytes()); // microseconds
    f.extend_from_slice(&2u32.to_be_bytes());
    f.extend_from_slice(&2u32.to_be_bytes());
    f.extend_from_slice(&[0xaa, 0xbb]);
    let p = read_packets(&f).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].link_type, LinkType::LINUX_SLL);
    assert_eq!(p[0].timestamp_ns, Some(7_000_005_000));
    assert_eq!(p[0].data, &[0xaa, 0xbb]);
}

/// pcapng block: type, total length, body (padded), total length, in byte order `be`.
fn block(be: bool, ty: u32, body: &[u8]) -> Vec<u8> {
    let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut padded = body.to_vec();
    padded.resize((body.len() + 3) & !3, 0);
    let total = 12 + padded.len() as u32;
    [&u32b(ty)[..], &u32b(total), &padded, &u32b(total)].concat()
}

fn pcapng(be: bool, link: u16, tsresol: Option<u8>, packets: &[&[u8]]) -> Vec<u8> {
    let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut shb = Vec::new();
    shb.extend_from_slice(&u32b(0x1a2b3c4d));
    shb.extend_from_slice(&u16b(1));
    shb.extend_from_slice(&u16b(0));
    shb.extend_from_slice(&[0xff; 8]); // section length unknown
    let mut idb = Vec::new();
    idb.extend_from_slice(&u16b(link));
    idb.extend_from_slice(&u16b(0));
    idb.extend_from_slice(&u32b(0));
    if let Some(r) = tsresol {
        idb.extend_from_slice(&u16b(9));
        idb.extend_from_slice(&u16b(1));
        idb.extend_from_slice(&[r, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
    }
    let mut file = [block(be, 0x0a0d0d0a, &shb), block(be, 1, &idb)].concat();
    // A Name Resolution Block to skip.
    file.extend(block(be, 4, &[0, 0, 0, 0]));
    for (i, p) in packets.iter().enumerate() {
        if i % 2 == 0 {
            let mut epb = Vec::new();
            epb.extend_from_slice(&u32b(0));
            epb.extend_from_slice(&u32b(0));
            epb.extend_from_slice(&u32b(1_000 + i as u32));
            epb.extend_from_slice(&u32b(p.len() as u32));
            epb.extend_from_slice(&u32b(p.len() as u32));
            epb.extend_from_slice(p);
            file.extend(block(be, 6, &epb));
        } else {
            let mut spb = Vec::new();
            spb.extend_from_slice(&u32b(p.len() as u32));
            spb.extend_from_slice(p);
            file.extend(block(be, 3, &spb));
        }
    }
    file
}

#[test]
fn reads_pcapng_in_both_byte_orders_with_enhanced_and_simple_blocks() {
    for be in [false, true] {
        let file = pcapng(be, 1, None, &[&[1, 2, 3], &[4, 5, 6, 7, 8], &[9]]);
        let p = read_packets(&file).unwrap();
        assert_eq!(p.len(), 3, "big-endian: {be}");
        assert_eq!(p[0].data, &[1, 2, 3]);
        assert_eq!(
            p[0].timestamp_ns,
            Some(1_000_000),
            "default resolution is µs"
        );
        assert_eq!(p[1].data, &[4, 5, 6, 7, 8], "SPB keeps the original length");
        assert_eq!(p[1].timestamp_ns, None);
        assert_eq!(p[2].number, 3);
    }
}

#[test]
fn honours_pcapng_timestamp_resolution() {
    let file = pcapng(false, 1, Some(9), &[&[0]]);
    assert_eq!(read_packets(&file).unwrap()[0].timestamp_ns, Some(1_000));
    let file = pcapng(false, 1, Some(0x80 | 10), &[&[0]]);
    // 1000 units of 2^-10 s = 0.9765625 s.
    assert_eq!(
        read_packets(&file).unwrap()[0].timestamp_ns,
        Some(976_562_500)
    );
}

#[test]
fn rejects_unknown_magic_and_truncated_records() {
    assert!(matches!(
        read_packets(b"GIF89a"),
        Err(PcapError::UnknownFormat { .. })
    ));
    let mut file = pcap_of(LinkType::ETHERNET, &[vec![1; 40]]);
    file.truncate(file.len() - 1);
    assert!(matches!(
        read_packets(&file),
        Err(PcapError::Truncated { .. })
    ));
    let mut file = pcapng(false, 1, None, &[&[1; 8]]);
    let n = file.len();
    file[n - 4] ^= 4; // trailing length differs
    assert!(matches!(
        read_packets(&file),
        Err(PcapError::BadBlock { .. })
    ));
}

#[test]
fn rejects_packet_block_naming_an_undeclared_interface() {
    let mut file = pcapng(false, 1, None, &[]);
    let mut epb = vec![0u8; 20];
    epb[0] = 3; // interface 3
    file.extend(block(false, 6, &epb));
    assert!(matches!(
        read_packets(&file),
        Err(PcapError::UnknownInterface { interface: 3, .. })
    ));
}

#[test]
fn never_panics_on_truncated_or_flipped_captures() {
    let mut flow = TcpFlow::new(client(), server());
    let mut frames = flow.open();
    frames.push(flow.data(true, &dwr(1)));
    let files = [
        pcap_of(LinkType::ETHERNET, &frames),
        pcapng(true, 1, Some(6), &[&frames[3], &frames[0]]),
    ];
    for file in files {
        for cut in 0..file.len() {
            let _ = diameter_messages(&file[..cut]);
        }
        for i in 0..file.len() {
            for bit in 0..8 {
                let mut f = file.clone();
                f[i] ^= 1 << bit;
                let _ = diameter_messages(&f);
            }
        }
    }
}

#[test]
fn finds_diameter_in_synthesised_tcp_frames() {
    let mut flow = TcpFlow::new(client(), server());
    let mut frames = flow.open();
    frames.push(flow.data(true, &dwr(7)));
    let file = pcap_of(LinkType::ETHERNET, &frames);
    let msgs = diameter_messages(&file).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].frame, 4);
    assert_eq!(msgs[0].bytes, dwr(7));
    assert_eq!(msgs[0].src, SocketAddr::V4(client()));
    assert_eq!(msgs[0].dst, SocketAddr::V4(server()));
    assert_eq!(msgs[0].transport, Transport::Tcp);
}

#[test]
fn reassembles_a_message_split_over_segments_and_drops_retransmissions() {
    let (a, b) = (dwr(1), dwr(2));
    let both = [a.clone(), b.clone()].concat();
    let flags = tcp_flags::ACK | tcp_flags::PSH;
    let seg = |seq: u32, data: &[u8]| ethernet_ipv4_tcp(client(), server(), seq, 1, flags, data);
    let frames = vec![
        seg(100, &both[..10]),
        seg(100, &both[..10]), // retransmitted
        seg(110, &both[10..50]),
        seg(105, &both[5..70]), // overlaps: only 50..70 is new
        seg(170, &both[70..]),
    ];
    let msgs = diameter_messages(&pcap_of(LinkType::ETHERNET, &frames)).unwrap();
    let got: Vec<_> = msgs.iter().map(|m| (m.frame, m.bytes.clone())).collect();
    assert_eq!(got, vec![(4, a), (5, b)]);
}

#[test]
fn resynchronises_after_a_capture_that_starts_mid_message() {
    let a = dwr(1);
    let flags = tcp_flags::ACK | tcp_flags::PSH;
    let seg = |seq: u32, data: &[u8]| ethernet_ipv4_tcp(client(), server(), seq, 1, flags, data);
    let frames = vec![
        seg(100, &a[30..]), // the tail of a message whose head was not captured
        seg(100 + (a.len() - 30) as u32, &a),
    ];
    let msgs = diameter_messages(&pcap_of(LinkType::ETHERNET, &frames)).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].frame, 2);
}

#[test]
fn ignores_tcp_on_other_ports_that_is_not_diameter() {
    let other = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
    let frame = ethernet_ipv4_tcp(
        client(),
        other,
        1,
        1,
        tcp_flags::ACK,
        b"\x01\x00\x00\x18GET / HTTP/1.1\r\n\r\n\0\0",
    );
    let msgs = diameter_messages(&pcap_of(LinkType::ETHERNET, &[frame])).unwrap();
    assert!(msgs.is_empty());
}

/// An SCTP packet over raw IPv4: common header, then the given chunks.
fn ipv4_sctp(chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut sctp = Vec::new();
    sctp.extend_from_slice(&40000u16.to_be_bytes());
    sctp.extend_from_slice(&3868u16.to_be_bytes());
    sctp.extend_from_slice(&[0; 8]); // verification tag, checksum
    for c in chunks {
        sctp.extend_from_slice(c);
    }
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + sctp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, net::IPPROTO_SCTP, 0, 0]);
    ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    ip.extend(sctp);
    ip
}

fn data_chunk(flags: u8, tsn: u32, ppid: u32, data: &[u8]) -> Vec<u8> {
    let mut c = vec![0, flags];
    c.extend_from_slice(&((16 + data.len()) as u16).to_be_bytes());
    c.extend_from_slice(&tsn.to_be_bytes());
    c.extend_from_slice(&[0, 0, 0, 0]); // stream 0, SSN 0
    c.extend_from_slice(&ppid.to_be_bytes());
    c.extend_from_slice(data);
    c.resize((c.len() + 3) & !3, 0);
    c
}

#[test]
fn takes_sctp_data_with_ppid_46_or_any_ppid_when_it_parses() {
    let (a, b, c) = (dwr(1), dwr(2), dwr(3));
    let frames = vec![
        ipv4_sctp(&[
            vec![3, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], // SACK
            data_chunk(3, 1, 46, &a),
        ]),
        ipv4_sctp(&[data_chunk(3, 2, 0, &b)]),
        ipv4_sctp(&[data_chunk(3, 2, 0, &b)]), // retransmitted TSN
        ipv4_sctp(&[data_chunk(3, 3, 0, b"not diameter at all")]),
        ipv4_sctp(&[data_chunk(2, 4, 46, &c[..30])]),
        ipv4_sctp(&[data_chunk(1, 5, 46, &c[30..])]),
    ];
    let msgs = diameter_messages(&pcap_of(LinkType::RAW, &frames)).unwrap();
    let got: Vec<_> = msgs.iter().map(|m| (m.frame, m.bytes.clone())).collect();
    assert_eq!(got, vec![(1, a), (2, b), (6, c)]);
    assert!(msgs.iter().all(|m| m.transport == Transport::Sctp));
}

#[test]
fn reads_cooked_loopback_and_raw_link_layers() {
    let eth = ethernet_ipv4_tcp(client(), server(), 1, 1, tcp_flags::ACK, &dwr(9));
    let ip = &eth[14..];
    let mut sll = vec![0u8; 14];
    sll.extend_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(ip);
    let mut sll2 = 0x0800u16.to_be_bytes().to_vec();
    sll2.resize(20, 0);
    sll2.extend_from_slice(ip);
    let null = [&2u32.to_le_bytes()[..], ip].concat();
    let lo = [&2u32.to_be_bytes()[..], ip].concat();
    for (link, frame) in [
        (LinkType::LINUX_SLL, sll),
        (LinkType::LINUX_SLL2, sll2),
        (LinkType::NULL, null),
        (LinkType::LOOP, lo),
        (LinkType::RAW, ip.to_vec()),
        (LinkType::IPV4, ip.to_vec()),
    ] {
        let msgs = diameter_messages(&pcap_of(link, &[frame])).unwrap();
        assert_eq!(msgs.len(), 1, "{link:?}");
        assert_eq!(msgs[0].bytes, dwr(9));
    }
}

#[test]
fn walks_ipv6_extension_headers() {
    let payload = ethernet_ipv4_tcp(client(), server(), 1, 1, tcp_flags::ACK, &dwr(4));
    let tcp = &payload[34..];
    let mut ip6 = vec![0x60, 0, 0, 0];
    ip6.extend_from_slice(&((8 + tcp.len()) as u16).to_be_bytes());
    ip6.push(60); // Destination Options
    ip6.push(64);
    ip6.extend_from_slice(&[0xfd; 16]);
    ip6.extend_from_slice(&[0xfe; 16]);
    ip6.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // next TCP, PadN
    ip6.extend_from_slice(tcp);
    let msgs = diameter_messages(&pcap_of(LinkType::IPV6, &[ip6])).unwrap();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].src.is_ipv6());
    assert_eq!(msgs[0].src.port(), 40000);
}

#[test]
fn shape_check_rejects_avps_that_do_not_tile_the_body() {
    let good = dwr(1);
    assert!(looks_like_diameter(&good));
    let mut bad = good.clone();
    bad[20 + 7] = 4; // first AVP length below its header
    assert!(!looks_like_diameter(&bad));
    let mut short = good.clone();
    short.truncate(good.len() - 4);
    assert!(!looks_like_diameter(&short));
}

#[test]
fn synthesised_frames_carry_valid_checksums() {
    let f = ethernet_ipv4_tcp(client(), server(), 1, 2, tcp_flags::ACK, b"abc");
    // Summing a header with its checksum in place gives 0 (RFC 1071).
    assert_eq!(net_checksum(&f[14..34]), 0);
    let pseudo = [&[10, 0, 0, 1, 10, 0, 0, 2, 0, 6][..], &[0, 23], &f[34..]].concat();
    assert_eq!(net_checksum(&pseudo), 0);
}

fn net_checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
