//! Interoperability with an independent implementation: the `diameter` crate (0.7,
//! lwlee2608/diameter-rs) as a base-protocol peer of our server, over real TCP.
//!
//! What it can and cannot exercise, from its own closed enums (`diameter::CommandCode`,
//! `diameter::ApplicationId`): it can send CER, DWR and DPR (application 0) and decode our
//! CEA, DWA and DPA, so the base protocol is checked both ways. It cannot send or decode
//! a Cx message (no command codes 300–305, no application 16777216: its header decoder
//! rejects them), and its client drops the connection on any request from the server, so
//! Cx traffic and server-initiated DWR/DPR are covered by `server_tcp.rs` instead.

use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use diameter::avp::address::Value::IPv4;
use diameter::avp::flags::M;
use diameter::avp::{Address, Avp, Enumerated, Grouped, Identity, UTF8String, Unsigned32};
use diameter::dictionary::{self, Dictionary as DDict};
use diameter::flags;
use diameter::transport::{DiameterClient, DiameterClientConfig};
use diameter::{ApplicationId, CommandCode, DiameterMessage};

use sichss::app::{Application, PeerInfo};
use sichss::codec::Message;
use sichss::dict::Dictionary;
use sichss::peer::LocalIdentity;
use sichss::server::{Peers, Server, ServerConfig};

const CX: u32 = 16_777_216;

/// Never called: the `diameter` crate cannot send Cx requests.
struct NoApp;

impl Application for NoApp {
    fn application_ids(&self) -> &[u32] {
        &[CX]
    }

    async fn handle(&self, req: Message, _peer: &PeerInfo) -> Message {
        Message::answer_to(&req)
    }
}

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .expect("test took too long")
}

async fn start() -> (
    String,
    Peers,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let mut cfg = ServerConfig::new(LocalIdentity::new("hss.ims.test", "ims.test"));
    cfg.listen = vec!["127.0.0.1:0".parse().unwrap()];
    let peers = Peers::new();
    let server = Server::bind(
        cfg,
        Arc::new(NoApp),
        Arc::new(Dictionary::builtin().clone()),
        peers.clone(),
    )
    .await
    .expect("bind");
    let addr = server.local_addrs()[0].to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));
    (addr, peers, tx, task)
}

async fn client(addr: &str, dict: Arc<DDict>) -> DiameterClient {
    let mut client = DiameterClient::new(
        addr,
        DiameterClientConfig {
            use_tls: false,
            verify_cert: false,
        },
    );
    let mut handler = client.connect().await.expect("connect");
    tokio::spawn(async move {
        DiameterClient::handle(&mut handler, dict).await;
    });
    client
}

fn cer(
    client: &mut DiameterClient,
    dict: &Arc<DDict>,
    host: &str,
    with_cx: bool,
) -> DiameterMessage {
    let seq = client.get_next_seq_num();
    let mut cer = DiameterMessage::new(
        CommandCode::CapabilitiesExchange,
        ApplicationId::Common,
        flags::REQUEST,
        seq,
        seq,
        Arc::clone(dict),
    );
    cer.add_avp(264, None, M, Identity::new(host).into());
    cer.add_avp(296, None, M, Identity::new("ims.test").into());
    cer.add_avp(257, None, M, Address::new(IPv4(Ipv4Addr::LOCALHOST)).into());
    cer.add_avp(266, None, M, Unsigned32::new(10415).into());
    cer.add_avp(269, None, 0, UTF8String::new("diameter-rs").into());
    if with_cx {
        let vsai = Grouped::new(
            vec![
                Avp::new(
                    266,
                    None,
                    M,
                    Unsigned32::new(10415).into(),
                    Arc::clone(dict),
                ),
                Avp::new(258, None, M, Unsigned32::new(CX).into(), Arc::clone(dict)),
            ],
            Arc::clone(dict),
        );
        cer.add_avp(260, None, M, vsai.into());
        cer.add_avp(265, None, M, Unsigned32::new(10415).into());
    } else {
        // Credit-Control only, as the crate's own example does.
        cer.add_avp(258, None, M, Unsigned32::new(4).into());
    }
    cer
}

fn result_code(m: &DiameterMessage) -> Option<u32> {
    m.get_avp(268).and_then(Avp::get_unsigned32)
}

#[tokio::test]
async fn diameter_crate_peer_does_cer_dwr_and_dpr() {
    bounded(async {
        let (addr, peers, stop, task) = start().await;
        let dict = Arc::new(DDict::new(&[&dictionary::DEFAULT_DICT_XML]));
        let mut c = client(&addr, Arc::clone(&dict)).await;

        let req = cer(&mut c, &dict, "rs-peer.ims.test", true);
        let cea = c
            .send_message(req)
            .await
            .expect("send CER")
            .await
            .expect("CEA");
        assert_eq!(cea.get_command_code(), CommandCode::CapabilitiesExchange);
        assert_eq!(cea.get_flags() & flags::REQUEST, 0);
        assert_eq!(result_code(&cea), Some(2001));
        assert_eq!(
            cea.get_avp(264)
                .and_then(Avp::get_identity)
                .map(|i| i.value().to_owned()),
            Some("hss.ims.test".to_owned())
        );
        let vsai = cea
            .get_avp(260)
            .and_then(Avp::get_grouped)
            .expect("VSAI decodes as Grouped");
        let app = vsai
            .avps()
            .iter()
            .find(|a| a.get_code() == 258)
            .and_then(Avp::get_unsigned32);
        assert_eq!(app, Some(CX));
        assert_eq!(cea.get_avp(265).and_then(Avp::get_unsigned32), Some(10415));
        assert!(
            cea.get_avp(257).and_then(Avp::get_address).is_some(),
            "Host-IP-Address"
        );
        assert!(peers.is_connected("rs-peer.ims.test"));

        let seq = c.get_next_seq_num();
        let mut dwr = DiameterMessage::new(
            CommandCode::DeviceWatchdog,
            ApplicationId::Common,
            flags::REQUEST,
            seq,
            seq,
            Arc::clone(&dict),
        );
        dwr.add_avp(264, None, M, Identity::new("rs-peer.ims.test").into());
        dwr.add_avp(296, None, M, Identity::new("ims.test").into());
        let dwa = c
            .send_message(dwr)
            .await
            .expect("send DWR")
            .await
            .expect("DWA");
        assert_eq!(dwa.get_command_code(), CommandCode::DeviceWatchdog);
        assert_eq!(dwa.get_hop_by_hop_id(), seq);
        assert_eq!(result_code(&dwa), Some(2001));

        let seq = c.get_next_seq_num();
        let mut dpr = DiameterMessage::new(
            CommandCode::DisconnectPeer,
            ApplicationId::Common,
            flags::REQUEST,
            seq,
            seq,
            Arc::clone(&dict),
        );
        dpr.add_avp(264, None, M, Identity::new("rs-peer.ims.test").into());
        dpr.add_avp(296, None, M, Identity::new("ims.test").into());
        dpr.add_avp(273, None, M, Enumerated::new(0).into());
        let dpa = c
            .send_message(dpr)
            .await
            .expect("send DPR")
            .await
            .expect("DPA");
        assert_eq!(dpa.get_command_code(), CommandCode::DisconnectPeer);
        assert_eq!(result_code(&dpa), Some(2001));

        // We close after the DPA; the registry forgets the peer.
        for _ in 0..200 {
            if !peers.is_connected("rs-peer.ims.test") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!peers.is_connected("rs-peer.ims.test"));
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn diameter_crate_peer_without_cx_gets_5010() {
    bounded(async {
        let (addr, peers, _stop, _task) = start().await;
        let dict = Arc::new(DDict::new(&[&dictionary::DEFAULT_DICT_XML]));
        let mut c = client(&addr, Arc::clone(&dict)).await;
        let req = cer(&mut c, &dict, "ocs.test", false);
        let cea = c
            .send_message(req)
            .await
            .expect("send CER")
            .await
            .expect("CEA");
        assert_eq!(result_code(&cea), Some(5010));
        assert_eq!(cea.get_flags() & flags::ERROR, 0);
        assert!(peers.list().is_empty());
    })
    .await;
}
