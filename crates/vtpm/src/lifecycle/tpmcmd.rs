//! TPM commands sent to an in-process engine (`Tpm::execute`), marshalled
//! by hand as `vtpm setup` does: the few a lifecycle command needs.

use anyhow::{Context, Result, bail};
use vtpm_engine::Tpm;
use vtpm_wire::codec::{Reader, Unmarshal};
use vtpm_wire::object::{Public, PublicId};

pub use vtpm_wire::constants::handle::{RH_ENDORSEMENT, RH_OWNER, RH_PLATFORM};

pub const CC_EVICT_CONTROL: u32 = 0x0000_0120;
pub const CC_NV_DEFINE_SPACE: u32 = 0x0000_012A;
pub const CC_PCR_ALLOCATE: u32 = 0x0000_012B;
pub const CC_CREATE_PRIMARY: u32 = 0x0000_0131;
pub const CC_NV_WRITE: u32 = 0x0000_0137;
pub const CC_STARTUP: u32 = 0x0000_0144;
pub const CC_SHUTDOWN: u32 = 0x0000_0145;
pub const CC_NV_READ: u32 = 0x0000_014E;
pub const CC_NV_READ_PUBLIC: u32 = 0x0000_0169;
pub const CC_GET_CAPABILITY: u32 = 0x0000_017A;
pub const CC_FLUSH_CONTEXT: u32 = 0x0000_0165;

/// TPMA_NV bits (vtpm-wire's), with the names tpm2-tools prints.
pub mod nv_attr {
    pub use vtpm_wire::types::nv_attr::*;

    /// The names tpm2-tools uses, bit by bit.
    pub const NAMES: &[(u32, &str)] = &[
        (PPWRITE, "ppwrite"),
        (OWNERWRITE, "ownerwrite"),
        (AUTHWRITE, "authwrite"),
        (POLICYWRITE, "policywrite"),
        (POLICY_DELETE, "policy_delete"),
        (WRITELOCKED, "writelocked"),
        (WRITEALL, "writeall"),
        (WRITEDEFINE, "writedefine"),
        (WRITE_STCLEAR, "write_stclear"),
        (GLOBALLOCK, "globallock"),
        (PPREAD, "ppread"),
        (OWNERREAD, "ownerread"),
        (AUTHREAD, "authread"),
        (POLICYREAD, "policyread"),
        (NO_DA, "no_da"),
        (ORDERLY, "orderly"),
        (CLEAR_STCLEAR, "clear_stclear"),
        (READLOCKED, "readlocked"),
        (WRITTEN, "written"),
        (PLATFORMCREATE, "platformcreate"),
        (READ_STCLEAR, "read_stclear"),
    ];

    /// `attrs` as tpm2-tools writes them: names joined by `|`, the type
    /// (bits 4..7) as `nt=N` when not ordinary.
    pub fn describe(attrs: u32) -> String {
        let mut parts: Vec<String> = NAMES
            .iter()
            .filter(|(bit, _)| attrs & bit != 0)
            .map(|(_, n)| (*n).to_string())
            .collect();
        let nt = nt(attrs);
        if nt != 0 {
            parts.push(format!("nt={nt}"));
        }
        parts.join("|")
    }
}

/// The empty password session (TPM_RS_PW).
const PW_SESSION: [u8; 9] = [0x40, 0, 0, 0x09, 0, 0, 0, 0, 0];

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn len_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// A TPM2B: 16-bit size then the bytes.
pub fn tpm2b(bytes: &[u8]) -> Vec<u8> {
    [&len_u16(bytes.len()).to_be_bytes()[..], bytes].concat()
}

/// A successful response's parts.
#[derive(Debug)]
pub struct Response {
    /// The response handle, if the command has one.
    pub handle: Option<u32>,
    /// The response parameters.
    pub params: Vec<u8>,
}

/// Runs a command: `handles` are authorized with empty passwords when
/// `auth_count` > 0 (the first `auth_count` handles).
pub fn run(
    tpm: &mut Tpm,
    name: &str,
    cc: u32,
    handles: &[u32],
    auth_count: usize,
    params: &[u8],
    response_handle: bool,
) -> Result<Response> {
    let mut body = Vec::new();
    body.extend_from_slice(&cc.to_be_bytes());
    for h in handles {
        body.extend_from_slice(&h.to_be_bytes());
    }
    let tag: u16 = if auth_count > 0 {
        let sessions: Vec<u8> = (0..auth_count).flat_map(|_| PW_SESSION).collect();
        body.extend_from_slice(&len_u32(sessions.len()).to_be_bytes());
        body.extend_from_slice(&sessions);
        0x8002
    } else {
        0x8001
    };
    body.extend_from_slice(params);
    let size = len_u32(body.len() + 6);
    let command = [&tag.to_be_bytes()[..], &size.to_be_bytes(), &body].concat();
    let resp = tpm.execute(0, &command);
    let mut r = Reader::new(&resp);
    let parse = |r: &mut Reader<'_>| -> Result<(u16, u32)> {
        let tag = r.u16()?;
        let _size = r.u32()?;
        Ok((tag, r.u32()?))
    };
    let (tag, rc) = parse(&mut r).with_context(|| format!("{name}: short response"))?;
    if rc != 0 {
        bail!("{name} failed: TPM_RC {rc:#05x}");
    }
    let handle = if response_handle {
        Some(r.u32().with_context(|| format!("{name}: short response"))?)
    } else {
        None
    };
    let params = if tag == 0x8002 {
        let n = r.u32().with_context(|| format!("{name}: short response"))?;
        r.take(usize::try_from(n).unwrap_or(usize::MAX))
            .with_context(|| format!("{name}: short response"))?
            .to_vec()
    } else {
        r.take_rest().to_vec()
    };
    Ok(Response { handle, params })
}

pub fn startup_clear(tpm: &mut Tpm) -> Result<()> {
    tpm.power_on();
    run(tpm, "TPM2_Startup", CC_STARTUP, &[], 0, &[0, 0], false).map(drop)
}

pub fn shutdown_clear(tpm: &mut Tpm) -> Result<()> {
    run(tpm, "TPM2_Shutdown", CC_SHUTDOWN, &[], 0, &[0, 0], false).map(drop)
}

/// TPM2_PCR_Allocate by the platform: exactly the banks in `algs` (all 24
/// PCRs each), effective from the next power-on.
pub fn pcr_allocate(tpm: &mut Tpm, algs: &[u16]) -> Result<()> {
    const ALL: [u16; 4] = [0x0004, 0x000B, 0x000C, 0x000D];
    let mut params = len_u32(ALL.len()).to_be_bytes().to_vec();
    for alg in ALL {
        params.extend_from_slice(&alg.to_be_bytes());
        params.push(3);
        let on = algs.contains(&alg);
        params.extend_from_slice(&if on { [0xFF; 3] } else { [0; 3] });
    }
    let r = run(
        tpm,
        "TPM2_PCR_Allocate",
        CC_PCR_ALLOCATE,
        &[RH_PLATFORM],
        1,
        &params,
        false,
    )?;
    if r.params.first() != Some(&1) {
        bail!("TPM2_PCR_Allocate did not allocate the banks asked for");
    }
    Ok(())
}

/// TPM2_CreatePrimary under `hierarchy` with `template` (a marshalled
/// TPMT_PUBLIC); returns the transient handle and the public area.
pub fn create_primary(tpm: &mut Tpm, hierarchy: u32, template: &[u8]) -> Result<(u32, Public)> {
    // inSensitive: empty userAuth and data; outsideInfo; no PCRs.
    let mut params = tpm2b(&[0, 0, 0, 0]);
    params.extend_from_slice(&tpm2b(template));
    params.extend_from_slice(&[0, 0]);
    params.extend_from_slice(&[0, 0, 0, 0]);
    let r = run(
        tpm,
        "TPM2_CreatePrimary",
        CC_CREATE_PRIMARY,
        &[hierarchy],
        1,
        &params,
        true,
    )?;
    let mut rd = Reader::new(&r.params);
    let public = (|| -> Result<Public> {
        let n = rd.u16()?;
        let mut sub = rd.sub(usize::from(n))?;
        Ok(Public::unmarshal(&mut sub)?)
    })()
    .context("TPM2_CreatePrimary: malformed outPublic")?;
    let handle = r.handle.context("TPM2_CreatePrimary: no handle")?;
    Ok((handle, public))
}

pub fn flush(tpm: &mut Tpm, handle: u32) -> Result<()> {
    run(
        tpm,
        "TPM2_FlushContext",
        CC_FLUSH_CONTEXT,
        &[],
        0,
        &handle.to_be_bytes(),
        false,
    )
    .map(drop)
}

/// TPM2_EvictControl by the owner: makes `object` persistent at `persistent`.
pub fn evict_control(tpm: &mut Tpm, object: u32, persistent: u32) -> Result<()> {
    run(
        tpm,
        "TPM2_EvictControl",
        CC_EVICT_CONTROL,
        &[RH_OWNER, object],
        1,
        &persistent.to_be_bytes(),
        false,
    )
    .map(drop)
}

/// TPM2_NV_DefineSpace by the platform (empty auth, no policy, SHA-256).
pub fn nv_define_platform(tpm: &mut Tpm, index: u32, attrs: u32, size: usize) -> Result<()> {
    let mut public = Vec::new();
    public.extend_from_slice(&index.to_be_bytes());
    public.extend_from_slice(&0x000Bu16.to_be_bytes());
    public.extend_from_slice(&attrs.to_be_bytes());
    public.extend_from_slice(&[0, 0]);
    public.extend_from_slice(&len_u16(size).to_be_bytes());
    let mut params = tpm2b(&[]);
    params.extend_from_slice(&tpm2b(&public));
    run(
        tpm,
        "TPM2_NV_DefineSpace",
        CC_NV_DEFINE_SPACE,
        &[RH_PLATFORM],
        1,
        &params,
        false,
    )
    .map(drop)
}

/// TPM2_NV_Write of all of `data` by `auth_handle`, in chunks.
pub fn nv_write(tpm: &mut Tpm, auth_handle: u32, index: u32, data: &[u8]) -> Result<()> {
    const CHUNK: usize = 1024;
    for (i, chunk) in data.chunks(CHUNK).enumerate() {
        let mut params = tpm2b(chunk);
        params.extend_from_slice(&len_u16(i * CHUNK).to_be_bytes());
        run(
            tpm,
            "TPM2_NV_Write",
            CC_NV_WRITE,
            &[auth_handle, index],
            1,
            &params,
            false,
        )?;
    }
    Ok(())
}

/// An NV index's public area: attributes and data size (TPM2_NV_ReadPublic).
pub fn nv_read_public(tpm: &mut Tpm, index: u32) -> Result<(u32, u16, u16)> {
    let r = run(
        tpm,
        "TPM2_NV_ReadPublic",
        CC_NV_READ_PUBLIC,
        &[index],
        0,
        &[],
        false,
    )?;
    let mut rd = Reader::new(&r.params);
    (|| -> Result<(u32, u16, u16)> {
        let _size = rd.u16()?;
        let _index = rd.u32()?;
        let name_alg = rd.u16()?;
        let attrs = rd.u32()?;
        let policy = rd.u16()?;
        rd.take(usize::from(policy))?;
        let data_size = rd.u16()?;
        Ok((attrs, data_size, name_alg))
    })()
    .context("TPM2_NV_ReadPublic: malformed response")
}

/// All of an NV index's data, read by `auth_handle` in chunks.
pub fn nv_read(tpm: &mut Tpm, auth_handle: u32, index: u32, size: u16) -> Result<Vec<u8>> {
    const CHUNK: u16 = 1024;
    let mut out = Vec::new();
    let mut offset = 0u16;
    while offset < size {
        let n = CHUNK.min(size - offset);
        let mut params = n.to_be_bytes().to_vec();
        params.extend_from_slice(&offset.to_be_bytes());
        let r = run(
            tpm,
            "TPM2_NV_Read",
            CC_NV_READ,
            &[auth_handle, index],
            1,
            &params,
            false,
        )?;
        let mut rd = Reader::new(&r.params);
        let len = rd.u16().context("TPM2_NV_Read: malformed response")?;
        out.extend_from_slice(
            rd.take(usize::from(len))
                .context("TPM2_NV_Read: malformed response")?,
        );
        offset = offset.saturating_add(n);
    }
    Ok(out)
}

/// TPM2_GetCapability(capability, property, count): the raw capabilityData.
pub fn get_capability(tpm: &mut Tpm, cap: u32, property: u32, count: u32) -> Result<Vec<u8>> {
    let mut params = cap.to_be_bytes().to_vec();
    params.extend_from_slice(&property.to_be_bytes());
    params.extend_from_slice(&count.to_be_bytes());
    let r = run(
        tpm,
        "TPM2_GetCapability",
        CC_GET_CAPABILITY,
        &[],
        0,
        &params,
        false,
    )?;
    Ok(r.params)
}

/// Handles of a TPM_CAP_HANDLES range (first `property`).
pub fn handles(tpm: &mut Tpm, first: u32) -> Result<Vec<u32>> {
    let data = get_capability(tpm, 0x0000_0001, first, 256)?;
    let mut rd = Reader::new(&data);
    (|| -> Result<Vec<u32>> {
        let _more = rd.u8()?;
        let _cap = rd.u32()?;
        let n = rd.u32()?;
        let mut v = Vec::new();
        for _ in 0..n {
            let h = rd.u32()?;
            if h >> 24 == first >> 24 {
                v.push(h);
            }
        }
        Ok(v)
    })()
    .context("TPM2_GetCapability: malformed response")
}

/// A TPM property (TPM_CAP_TPM_PROPERTIES).
pub fn property(tpm: &mut Tpm, pt: u32) -> Result<u32> {
    let data = get_capability(tpm, 0x0000_0006, pt, 1)?;
    let mut rd = Reader::new(&data);
    (|| -> Result<u32> {
        let _more = rd.u8()?;
        let _cap = rd.u32()?;
        let n = rd.u32()?;
        for _ in 0..n {
            let p = rd.u32()?;
            let v = rd.u32()?;
            if p == pt {
                return Ok(v);
            }
        }
        bail!("property {pt:#x} not reported")
    })()
    .context("TPM2_GetCapability(TPM_PROPERTIES)")
}

/// The allocated PCR banks (hash algorithm ids with any PCR selected).
pub fn pcr_banks(tpm: &mut Tpm) -> Result<Vec<u16>> {
    let data = get_capability(tpm, 0x0000_0005, 0, 1)?;
    let mut rd = Reader::new(&data);
    (|| -> Result<Vec<u16>> {
        let _more = rd.u8()?;
        let _cap = rd.u32()?;
        let n = rd.u32()?;
        let mut v = Vec::new();
        for _ in 0..n {
            let alg = rd.u16()?;
            let size = rd.u8()?;
            let sel = rd.take(usize::from(size))?;
            if sel.iter().any(|b| *b != 0) {
                v.push(alg);
            }
        }
        Ok(v)
    })()
    .context("TPM2_GetCapability(TPM_PCRS)")
}

/// The public key of an RSA or ECC public area: (modulus) or (x, y).
pub enum KeyBytes {
    Rsa(Vec<u8>),
    Ecc(Vec<u8>, Vec<u8>),
}

pub fn key_bytes(public: &Public) -> Result<KeyBytes> {
    Ok(match &public.unique {
        PublicId::Rsa(n) => KeyBytes::Rsa(n.as_bytes().to_vec()),
        PublicId::Ecc(p) => KeyBytes::Ecc(p.x.as_bytes().to_vec(), p.y.as_bytes().to_vec()),
        _ => bail!("not an RSA or ECC key"),
    })
}

#[cfg(test)]
mod tests {
    use super::nv_attr;

    #[test]
    fn nv_attribute_names() {
        assert_eq!(
            nv_attr::describe(0x6207_0001),
            "ppwrite|ppread|ownerread|authread|no_da|written|platformcreate"
        );
        assert_eq!(
            nv_attr::describe(0x0002_0002 | (1 << 4)),
            "ownerwrite|ownerread|nt=1"
        );
    }
}
