//! `vtpm serve` keeps serving after clients send garbage: random bytes,
//! absurd sizes, truncated requests, malformed TPM commands, idle
//! connections. After each abuse, tpm2-tools still works against the same
//! server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use vtpm_tests::{MSSIM_SEND_COMMAND, Protocol, Server, connect, split_response};

use vtpm_tests::both;
use vtpm_tests::xorshift32;

both!(garbage_on_the_command_port, malformed_tpm_commands);

/// Deterministic pseudo-random bytes.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    xorshift32(seed.wrapping_mul(2_654_435_761) | 1)
        .take(len)
        .map(|x| x.to_le_bytes()[1])
        .collect()
}

/// Reads until the server closes the connection. A reset (the server
/// closed with our bytes unread) counts as closed; a timeout means the
/// server kept a connection open that it should have dropped.
fn expect_close(s: &mut TcpStream, what: &str, server: &Server) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "[{}] {what}: the server did not close the connection: {e}",
                server.protocol()
            ),
        }
    }
}

/// Sends `bytes`, half-closes, and waits for the server to close.
fn send_and_close(server: &Server, port: u16, bytes: &[u8], what: &str) -> Vec<u8> {
    let mut s = connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    // The server may close before reading everything: a failed write is
    // fine.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    expect_close(&mut s, what, server)
}

/// The server still serves tpm2-tools.
fn still_serving(server: &mut Server, after: &str) {
    assert!(
        server.is_running(),
        "[{}] the server exited after {after}",
        server.protocol()
    );
    let r = server.run("tpm2_getrandom", ["8", "--hex"]);
    assert!(
        r.success(),
        "[{}] tpm2_getrandom fails after {after}: {r}",
        server.protocol()
    );
    assert_eq!(
        r.stdout.trim().len(),
        16,
        "tpm2_getrandom 8 --hex after {after}: {r}"
    );
}

fn garbage_on_the_command_port(protocol: Protocol) {
    let mut server = Server::start(protocol);
    server.startup_clear();
    let (data, control) = (server.port(), server.control_port());

    // Random bytes, several sizes, on the command / data port.
    for (i, len) in [1usize, 3, 4, 9, 10, 64, 4096, 20_000]
        .into_iter()
        .enumerate()
    {
        send_and_close(
            &server,
            data,
            &noise(len, i as u32 + 1),
            &format!("{len} random bytes"),
        );
        still_serving(
            &mut server,
            &format!("{len} random bytes on the command port"),
        );
    }

    // A huge size field: the server must drop the connection by itself,
    // without waiting for (or allocating) gigabytes.
    let huge: Vec<u8> = match protocol {
        Protocol::Mssim => [
            &MSSIM_SEND_COMMAND.to_be_bytes()[..],
            &[0],
            &u32::MAX.to_be_bytes(),
        ]
        .concat(),
        Protocol::Swtpm => [
            &[0x80, 0x01][..],
            &0xFFFF_FFF0u32.to_be_bytes(),
            &0x0000_017Bu32.to_be_bytes(),
        ]
        .concat(),
    };
    {
        let mut s = connect(server.addr());
        s.write_all(&huge).unwrap();
        let reply = expect_close(&mut s, "a command with a huge size field", &server);
        // Nothing, or a TPM error response; never a success.
        if reply.len() >= 10 {
            assert_ne!(
                &reply[6..10],
                &[0, 0, 0, 0],
                "huge command answered with success: {reply:02x?}"
            );
        }
    }
    still_serving(&mut server, "a huge size field");

    // A request that announces 100 bytes and stops after 20.
    let truncated: Vec<u8> = match protocol {
        Protocol::Mssim => [
            &MSSIM_SEND_COMMAND.to_be_bytes()[..],
            &[0],
            &100u32.to_be_bytes(),
            &[0x80, 0x01, 0, 0, 0, 100],
            &[0u8; 10],
        ]
        .concat(),
        Protocol::Swtpm => [&[0x80, 0x01, 0, 0, 0, 100][..], &[0u8; 14]].concat(),
    };
    send_and_close(&server, data, &truncated, "a truncated command");
    still_serving(&mut server, "a truncated command");

    // Connections that send nothing.
    for _ in 0..20 {
        drop(connect(server.addr()));
        drop(connect(server.control_addr()));
    }
    still_serving(&mut server, "20 empty connections per port");

    // Garbage on the platform / control port.
    for (i, len) in [2usize, 4, 8, 64, 5000].into_iter().enumerate() {
        send_and_close(
            &server,
            control,
            &noise(len, 100 + i as u32),
            &format!("{len} random bytes on the control port"),
        );
        still_serving(
            &mut server,
            &format!("{len} random bytes on the control port"),
        );
    }
}

/// (tag, size, response code) of a response, checking the size field.
fn response_header(resp: &[u8]) -> (u16, u32, u32) {
    let (tag, rc, _) = split_response(resp);
    (tag, resp.len() as u32, rc)
}

const TPM_RC_BAD_TAG: u32 = 0x01E;
const TPM_RC_COMMAND_SIZE: u32 = 0x142;
const TPM_RC_COMMAND_CODE: u32 = 0x143;
const TPM_RC_SUCCESS: u32 = 0;

fn malformed_tpm_commands(protocol: Protocol) {
    let mut server = Server::start(protocol);
    server.startup_clear();

    // A well-formed GetRandom(8) over the raw socket.
    let get_random = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 8];
    let resp = server.raw_command(&get_random, None);
    assert_eq!(
        response_header(&resp),
        (0x8001, 20, TPM_RC_SUCCESS),
        "GetRandom(8): {resp:02x?}"
    );
    assert_eq!(
        &resp[10..12],
        &[0, 8],
        "GetRandom(8) returns 8 bytes: {resp:02x?}"
    );

    // A bad tag: TPM_RC_BAD_TAG, in a TPM_ST_NO_SESSIONS response.
    let resp = server.raw_command(&[0x12, 0x34, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 8], None);
    assert_eq!(
        response_header(&resp),
        (0x8001, 10, TPM_RC_BAD_TAG),
        "bad tag: {resp:02x?}"
    );

    // An unknown command code.
    let resp = server.raw_command(&[0x80, 0x01, 0, 0, 0, 10, 0x00, 0x00, 0x0F, 0xFF], None);
    assert_eq!(
        response_header(&resp),
        (0x8001, 10, TPM_RC_COMMAND_CODE),
        "unknown command code: {resp:02x?}"
    );

    // commandSize that disagrees with the bytes received (mssim frames
    // commands by its own size field, so the TPM sees the mismatch).
    if protocol == Protocol::Mssim {
        let mut cmd = get_random;
        cmd[5] = 40;
        let resp = server.raw_command(&cmd, None);
        assert_eq!(
            response_header(&resp),
            (0x8001, 10, TPM_RC_COMMAND_SIZE),
            "commandSize 40 for 12 bytes: {resp:02x?}"
        );
    }

    // A command with trailing bytes beyond its parameters.
    let mut long = get_random.to_vec();
    long.extend_from_slice(&[0xAA; 4]);
    long[5] = 16;
    let resp = server.raw_command(&long, None);
    let (_, _, rc) = response_header(&resp);
    assert_eq!(
        rc, TPM_RC_SIZE,
        "GetRandom with 4 extra parameter bytes: {resp:02x?}"
    );

    still_serving(&mut server, "malformed TPM commands");
}

/// TPM_RC_SIZE (0x095), not tied to a parameter number.
const TPM_RC_SIZE: u32 = 0x095;
