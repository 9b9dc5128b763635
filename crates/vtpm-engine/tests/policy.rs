//! Raw-command tests of policy commands that tpm2-tools has no tool for
//! (TPM2_PolicyPhysicalPresence), judged by the spec's digest formula.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use sha2::{Digest as _, Sha256};
use vtpm_engine::{MemoryPlatform, Tpm};

const NO_SESSIONS: u16 = 0x8001;
const SESSIONS: u16 = 0x8002;
const RS_PW: u32 = 0x4000_0009;
const RH_NULL: u32 = 0x4000_0007;
const RH_OWNER: u32 = 0x4000_0001;
const CC_STARTUP: u32 = 0x144;
const CC_START_AUTH_SESSION: u32 = 0x176;
const CC_POLICY_PHYSICAL_PRESENCE: u32 = 0x187;
const CC_POLICY_GET_DIGEST: u32 = 0x189;
const CC_SET_PRIMARY_POLICY: u32 = 0x12E;
const CC_NV_DEFINE_SPACE: u32 = 0x12A;

/// A command with sessions (`auths`: session handle and hmac), or none.
fn command(code: u32, handles: &[u32], auths: Option<&[(u32, &[u8])]>, params: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for h in handles {
        body.extend(h.to_be_bytes());
    }
    if let Some(auths) = auths {
        let mut area = Vec::new();
        for (h, hmac) in auths {
            area.extend(h.to_be_bytes());
            if *h == RS_PW {
                area.extend(0u16.to_be_bytes());
            } else {
                area.extend(16u16.to_be_bytes());
                area.extend([5u8; 16]);
            }
            area.push(0x01);
            area.extend((hmac.len() as u16).to_be_bytes());
            area.extend(*hmac);
        }
        body.extend((area.len() as u32).to_be_bytes());
        body.extend(area);
    }
    body.extend(params);
    let tag = if auths.is_some() {
        SESSIONS
    } else {
        NO_SESSIONS
    };
    let mut cmd = tag.to_be_bytes().to_vec();
    cmd.extend(((10 + body.len()) as u32).to_be_bytes());
    cmd.extend(code.to_be_bytes());
    cmd.extend(body);
    cmd
}

fn rc(rsp: &[u8]) -> u32 {
    u32::from_be_bytes(rsp[6..10].try_into().unwrap())
}

fn started() -> Tpm {
    let mut t = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
    t.power_on();
    assert_eq!(
        rc(&t.execute(0, &command(CC_STARTUP, &[], None, &[0, 0]))),
        0
    );
    t
}

/// Starts a SHA-256 session of type `se` (1 policy, 3 trial).
fn start_session(t: &mut Tpm, se: u8) -> u32 {
    let mut p = 16u16.to_be_bytes().to_vec();
    p.extend([7u8; 16]);
    p.extend(0u16.to_be_bytes());
    p.push(se);
    p.extend(0x0010u16.to_be_bytes());
    p.extend(0x000Bu16.to_be_bytes());
    let r = t.execute(
        0,
        &command(CC_START_AUTH_SESSION, &[RH_NULL, RH_NULL], None, &p),
    );
    assert_eq!(rc(&r), 0);
    u32::from_be_bytes(r[10..14].try_into().unwrap())
}

#[test]
fn policy_physical_presence_digest_and_no_presence() {
    let mut t = started();
    let expected = Sha256::new()
        .chain_update([0u8; 32])
        .chain_update(CC_POLICY_PHYSICAL_PRESENCE.to_be_bytes())
        .finalize()
        .to_vec();
    let trial = start_session(&mut t, 3);
    let r = t.execute(
        0,
        &command(CC_POLICY_PHYSICAL_PRESENCE, &[trial], None, &[]),
    );
    assert_eq!(rc(&r), 0);
    let r = t.execute(0, &command(CC_POLICY_GET_DIGEST, &[trial], None, &[]));
    assert_eq!(rc(&r), 0);
    assert_eq!(&r[10..12], &[0, 32]);
    assert_eq!(r[12..44].to_vec(), expected);

    // The owner's policy requires physical presence, which this TPM never
    // has: TPM_RC_PP (session 1) when a policy session meets the digest.
    let mut p = 32u16.to_be_bytes().to_vec();
    p.extend(&expected);
    p.extend(0x000Bu16.to_be_bytes());
    let r = t.execute(
        0,
        &command(
            CC_SET_PRIMARY_POLICY,
            &[RH_OWNER],
            Some(&[(RS_PW, &[])]),
            &p,
        ),
    );
    assert_eq!(rc(&r), 0);
    let session = start_session(&mut t, 1);
    let r = t.execute(
        0,
        &command(CC_POLICY_PHYSICAL_PRESENCE, &[session], None, &[]),
    );
    assert_eq!(rc(&r), 0);
    let mut public = 0x0150_0001u32.to_be_bytes().to_vec();
    public.extend(0x000Bu16.to_be_bytes());
    public.extend(((1u32 << 1) | (1 << 17)).to_be_bytes());
    public.extend(0u16.to_be_bytes());
    public.extend(8u16.to_be_bytes());
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend((public.len() as u16).to_be_bytes());
    p.extend(public);
    let r = t.execute(
        0,
        &command(CC_NV_DEFINE_SPACE, &[RH_OWNER], Some(&[(session, &[])]), &p),
    );
    assert_eq!(rc(&r), 0x990, "rc {:#x}", rc(&r));
}
