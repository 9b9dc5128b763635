//! Raw-command tests of policy commands that tpm2-tools has no tool for
//! (TPM2_PolicyPhysicalPresence), judged by the spec's digest formula.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use sha2::{Digest as _, Sha256};

mod common;
use common::*;

/// The authorization of policy session `h`: nonceCaller 16 × 0x05, an
/// empty HMAC.
fn policy_auth(h: u32) -> Vec<u8> {
    auth(h, &[5u8; 16], 0x01, &[])
}

#[test]
fn policy_physical_presence_digest_and_no_presence() {
    let mut t = started();
    let expected = Sha256::new()
        .chain_update([0u8; 32])
        .chain_update(cc::POLICY_PHYSICAL_PRESENCE.to_be_bytes())
        .finalize()
        .to_vec();
    let trial = start_auth_session(&mut t, 3).0;
    let r = t.execute(
        0,
        &command_auths(cc::POLICY_PHYSICAL_PRESENCE, &[trial], &[], &[]),
    );
    assert_eq!(rc_of(&r), 0);
    let r = t.execute(0, &command_auths(cc::POLICY_GET_DIGEST, &[trial], &[], &[]));
    assert_eq!(rc_of(&r), 0);
    assert_eq!(&r[10..12], &[0, 32]);
    assert_eq!(r[12..44].to_vec(), expected);

    // The owner's policy requires physical presence, which this TPM never
    // has: TPM_RC_PP (session 1) when a policy session meets the digest.
    let mut p = 32u16.to_be_bytes().to_vec();
    p.extend(&expected);
    p.extend(0x000Bu16.to_be_bytes());
    let r = t.execute(
        0,
        &command_auths(cc::SET_PRIMARY_POLICY, &[RH_OWNER], &[password(&[])], &p),
    );
    assert_eq!(rc_of(&r), 0);
    let session = start_auth_session(&mut t, 1).0;
    let r = t.execute(
        0,
        &command_auths(cc::POLICY_PHYSICAL_PRESENCE, &[session], &[], &[]),
    );
    assert_eq!(rc_of(&r), 0);
    let mut p = tpm2b(&[]); // auth
    p.extend(nv_public(
        0x0150_0001,
        nv_attr::OWNERWRITE | nv_attr::OWNERREAD,
        8,
    ));
    let r = t.execute(
        0,
        &command_auths(
            cc::NV_DEFINE_SPACE,
            &[RH_OWNER],
            &[policy_auth(session)],
            &p,
        ),
    );
    assert_eq!(rc_of(&r), 0x990, "rc {:#x}", rc_of(&r));
}
