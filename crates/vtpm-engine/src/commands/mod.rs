//! The commands, one file per command, grouped by the chapter of Part 3
//! they are specified in, and the dispatch table that lists them.

pub mod asymmetric;
pub mod attestation;
pub mod capability;
pub mod clock;
pub mod command_audit;
pub mod context;
pub mod dictionary_attack;
pub mod duplication;
pub mod ea;
pub mod hierarchy;
pub mod nv;
pub mod object;
pub mod pcr;
pub mod random;
pub mod sequence;
pub mod session;
pub mod signature;
pub mod start_up;
pub mod symmetric;
pub mod testing;

use crate::dispatch::{AuthRole, CommandDef, HandleKind, HandleSpec, attr, run};
use vtpm_wire::constants::CommandCode as Cc;

const PCR_USER: HandleSpec = HandleSpec {
    kind: HandleKind::Pcr { null_ok: false },
    auth: AuthRole::User,
};
const PCR_PLUS_USER: HandleSpec = HandleSpec {
    kind: HandleKind::Pcr { null_ok: true },
    auth: AuthRole::User,
};
const PLATFORM_USER: HandleSpec = HandleSpec {
    kind: HandleKind::Platform,
    auth: AuthRole::User,
};
const HIERARCHY_USER: HandleSpec = HandleSpec {
    kind: HandleKind::Hierarchy,
    auth: AuthRole::User,
};
const PROVISION_USER: HandleSpec = HandleSpec {
    kind: HandleKind::Provision,
    auth: AuthRole::User,
};
const HIERARCHY_AUTH_USER: HandleSpec = HandleSpec {
    kind: HandleKind::HierarchyAuth,
    auth: AuthRole::User,
};
const LOCKOUT_USER: HandleSpec = HandleSpec {
    kind: HandleKind::Lockout,
    auth: AuthRole::User,
};
const CLEAR_USER: HandleSpec = HandleSpec {
    kind: HandleKind::Clear,
    auth: AuthRole::User,
};
const NV_AUTH_USER: HandleSpec = HandleSpec {
    kind: HandleKind::NvAuth,
    auth: AuthRole::User,
};
const NV_INDEX: HandleSpec = HandleSpec {
    kind: HandleKind::NvIndex,
    auth: AuthRole::None,
};
const NV_INDEX_ADMIN: HandleSpec = HandleSpec {
    kind: HandleKind::NvIndex,
    auth: AuthRole::Admin,
};
const CONTEXT: HandleSpec = HandleSpec {
    kind: HandleKind::Context,
    auth: AuthRole::None,
};
const OBJECT_PLUS: HandleSpec = HandleSpec {
    kind: HandleKind::ObjectPlus,
    auth: AuthRole::None,
};
const ENTITY_PLUS: HandleSpec = HandleSpec {
    kind: HandleKind::EntityPlus,
    auth: AuthRole::None,
};
const OBJECT_USER: HandleSpec = HandleSpec {
    kind: HandleKind::Object,
    auth: AuthRole::User,
};
const OBJECT: HandleSpec = HandleSpec {
    kind: HandleKind::Object,
    auth: AuthRole::None,
};
const OBJECT_ADMIN: HandleSpec = HandleSpec {
    kind: HandleKind::Object,
    auth: AuthRole::Admin,
};
const OBJECT_DUP: HandleSpec = HandleSpec {
    kind: HandleKind::Object,
    auth: AuthRole::Dup,
};
const OBJECT_PLUS_USER: HandleSpec = HandleSpec {
    kind: HandleKind::ObjectPlus,
    auth: AuthRole::User,
};
const ENTITY_USER: HandleSpec = HandleSpec {
    kind: HandleKind::Entity,
    auth: AuthRole::User,
};
const POLICY_SESSION: HandleSpec = HandleSpec {
    kind: HandleKind::PolicySession,
    auth: AuthRole::None,
};
const HIERARCHY_PLUS_USER: HandleSpec = HandleSpec {
    kind: HandleKind::HierarchyPlus,
    auth: AuthRole::User,
};
const ENDORSEMENT_USER: HandleSpec = HandleSpec {
    kind: HandleKind::Endorsement,
    auth: AuthRole::User,
};
const HMAC_SESSION: HandleSpec = HandleSpec {
    kind: HandleKind::HmacSession,
    auth: AuthRole::None,
};
const PARENT_PLUS_USER: HandleSpec = HandleSpec {
    kind: HandleKind::ParentPlus,
    auth: AuthRole::User,
};

const fn def(
    cc: Cc,
    handles: &'static [HandleSpec],
    response_handle: bool,
    attrs: u8,
    handler: crate::dispatch::Handler,
) -> CommandDef {
    CommandDef {
        cc,
        handles,
        response_handle,
        attrs,
        handler,
    }
}

/// Every implemented command, sorted by command code. Anything else
/// answers TPM_RC_COMMAND_CODE.
pub static TABLE: &[CommandDef] = &[
    def(
        Cc::NV_UndefineSpaceSpecial,
        &[NV_INDEX_ADMIN, PLATFORM_USER],
        false,
        attr::NV,
        run::<nv::nv_undefine_space_special::NvUndefineSpaceSpecial>,
    ),
    def(
        Cc::EvictControl,
        &[PROVISION_USER, OBJECT],
        false,
        attr::NV,
        run::<context::evict_control::EvictControl>,
    ),
    def(
        Cc::HierarchyControl,
        &[HIERARCHY_USER],
        false,
        0,
        run::<hierarchy::hierarchy_control::HierarchyControl>,
    ),
    def(
        Cc::NV_UndefineSpace,
        &[PROVISION_USER, NV_INDEX],
        false,
        attr::NV,
        run::<nv::nv_undefine_space::NvUndefineSpace>,
    ),
    def(
        Cc::ChangeEPS,
        &[PLATFORM_USER],
        false,
        attr::NV,
        run::<hierarchy::change_eps::ChangeEps>,
    ),
    def(
        Cc::ChangePPS,
        &[PLATFORM_USER],
        false,
        attr::NV,
        run::<hierarchy::change_pps::ChangePps>,
    ),
    def(
        Cc::Clear,
        &[CLEAR_USER],
        false,
        attr::NV,
        run::<hierarchy::clear::Clear>,
    ),
    def(
        Cc::ClearControl,
        &[CLEAR_USER],
        false,
        attr::NV,
        run::<hierarchy::clear_control::ClearControl>,
    ),
    def(
        Cc::ClockSet,
        &[PROVISION_USER],
        false,
        attr::NV,
        run::<clock::clock_set::ClockSet>,
    ),
    def(
        Cc::HierarchyChangeAuth,
        &[HIERARCHY_AUTH_USER],
        false,
        attr::NV | attr::DECRYPT,
        run::<hierarchy::hierarchy_change_auth::HierarchyChangeAuth>,
    ),
    def(
        Cc::NV_DefineSpace,
        &[PROVISION_USER],
        false,
        attr::NV | attr::DECRYPT,
        run::<nv::nv_define_space::NvDefineSpace>,
    ),
    def(
        Cc::PCR_Allocate,
        &[PLATFORM_USER],
        false,
        attr::NV,
        run::<pcr::pcr_allocate::PcrAllocate>,
    ),
    def(
        Cc::SetPrimaryPolicy,
        &[HIERARCHY_AUTH_USER],
        false,
        attr::NV | attr::DECRYPT,
        run::<hierarchy::set_primary_policy::SetPrimaryPolicy>,
    ),
    def(
        Cc::ClockRateAdjust,
        &[PROVISION_USER],
        false,
        0,
        run::<clock::clock_rate_adjust::ClockRateAdjust>,
    ),
    def(
        Cc::CreatePrimary,
        &[HIERARCHY_PLUS_USER],
        true,
        attr::DECRYPT | attr::ENCRYPT,
        run::<hierarchy::create_primary::CreatePrimary>,
    ),
    def(
        Cc::NV_GlobalWriteLock,
        &[PROVISION_USER],
        false,
        attr::NV,
        run::<nv::nv_global_write_lock::NvGlobalWriteLock>,
    ),
    def(
        Cc::GetCommandAuditDigest,
        &[ENDORSEMENT_USER, OBJECT_PLUS_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT | attr::NV,
        run::<attestation::get_command_audit_digest::GetCommandAuditDigest>,
    ),
    def(
        Cc::NV_Increment,
        &[NV_AUTH_USER, NV_INDEX],
        false,
        attr::NV,
        run::<nv::nv_increment::NvIncrement>,
    ),
    def(
        Cc::NV_SetBits,
        &[NV_AUTH_USER, NV_INDEX],
        false,
        attr::NV,
        run::<nv::nv_set_bits::NvSetBits>,
    ),
    def(
        Cc::NV_Extend,
        &[NV_AUTH_USER, NV_INDEX],
        false,
        attr::NV | attr::DECRYPT,
        run::<nv::nv_extend::NvExtend>,
    ),
    def(
        Cc::NV_Write,
        &[NV_AUTH_USER, NV_INDEX],
        false,
        attr::NV | attr::DECRYPT,
        run::<nv::nv_write::NvWrite>,
    ),
    def(
        Cc::NV_WriteLock,
        &[NV_AUTH_USER, NV_INDEX],
        false,
        attr::NV,
        run::<nv::nv_write_lock::NvWriteLock>,
    ),
    def(
        Cc::DictionaryAttackLockReset,
        &[LOCKOUT_USER],
        false,
        attr::NV,
        run::<dictionary_attack::dictionary_attack_lock_reset::DictionaryAttackLockReset>,
    ),
    def(
        Cc::DictionaryAttackParameters,
        &[LOCKOUT_USER],
        false,
        attr::NV,
        run::<dictionary_attack::dictionary_attack_parameters::DictionaryAttackParameters>,
    ),
    def(
        Cc::NV_ChangeAuth,
        &[NV_INDEX_ADMIN],
        false,
        attr::NV | attr::DECRYPT,
        run::<nv::nv_change_auth::NvChangeAuth>,
    ),
    def(
        Cc::PCR_Event,
        &[PCR_PLUS_USER],
        false,
        attr::DECRYPT,
        run::<pcr::pcr_event::PcrEvent>,
    ),
    def(
        Cc::PCR_Reset,
        &[PCR_USER],
        false,
        0,
        run::<pcr::pcr_reset::PcrReset>,
    ),
    def(
        Cc::SequenceComplete,
        &[OBJECT_USER],
        false,
        attr::FLUSHED | attr::DECRYPT | attr::ENCRYPT,
        run::<sequence::sequence_complete::SequenceComplete>,
    ),
    def(
        Cc::SetCommandCodeAuditStatus,
        &[PROVISION_USER],
        false,
        attr::NV,
        run::<command_audit::set_command_code_audit_status::SetCommandCodeAuditStatus>,
    ),
    def(
        Cc::IncrementalSelfTest,
        &[],
        false,
        0,
        run::<testing::incremental_self_test::IncrementalSelfTest>,
    ),
    def(
        Cc::SelfTest,
        &[],
        false,
        0,
        run::<testing::self_test::SelfTest>,
    ),
    def(
        Cc::Startup,
        &[],
        false,
        attr::NV | attr::NO_SESSIONS,
        run::<start_up::startup::Startup>,
    ),
    def(
        Cc::Shutdown,
        &[],
        false,
        attr::NV,
        run::<start_up::shutdown::Shutdown>,
    ),
    def(
        Cc::StirRandom,
        &[],
        false,
        attr::DECRYPT,
        run::<random::stir_random::StirRandom>,
    ),
    def(
        Cc::ActivateCredential,
        &[OBJECT_ADMIN, OBJECT_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<object::activate_credential::ActivateCredential>,
    ),
    def(
        Cc::Certify,
        &[OBJECT_ADMIN, OBJECT_PLUS_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<attestation::certify::Certify>,
    ),
    def(
        Cc::PolicyNV,
        &[NV_AUTH_USER, NV_INDEX, POLICY_SESSION],
        false,
        attr::DECRYPT,
        run::<ea::policy_nv::PolicyNv>,
    ),
    def(
        Cc::CertifyCreation,
        &[OBJECT_PLUS_USER, OBJECT],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<attestation::certify_creation::CertifyCreation>,
    ),
    def(
        Cc::Duplicate,
        &[OBJECT_DUP, OBJECT_PLUS],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<duplication::duplicate::Duplicate>,
    ),
    def(
        Cc::GetTime,
        &[ENDORSEMENT_USER, OBJECT_PLUS_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<attestation::get_time::GetTime>,
    ),
    def(
        Cc::GetSessionAuditDigest,
        &[ENDORSEMENT_USER, OBJECT_PLUS_USER, HMAC_SESSION],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<attestation::get_session_audit_digest::GetSessionAuditDigest>,
    ),
    def(
        Cc::NV_Read,
        &[NV_AUTH_USER, NV_INDEX],
        false,
        attr::ENCRYPT,
        run::<nv::nv_read::NvRead>,
    ),
    def(
        Cc::NV_ReadLock,
        &[NV_AUTH_USER, NV_INDEX],
        false,
        attr::NV,
        run::<nv::nv_read_lock::NvReadLock>,
    ),
    def(
        Cc::ObjectChangeAuth,
        &[OBJECT_ADMIN, OBJECT],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<object::object_change_auth::ObjectChangeAuth>,
    ),
    def(
        Cc::PolicySecret,
        &[ENTITY_USER, POLICY_SESSION],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<ea::policy_secret::PolicySecret>,
    ),
    def(
        Cc::Rewrap,
        &[OBJECT_PLUS_USER, OBJECT_PLUS],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<duplication::rewrap::Rewrap>,
    ),
    def(
        Cc::Create,
        &[OBJECT_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<object::create::Create>,
    ),
    def(
        Cc::ECDH_ZGen,
        &[OBJECT_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<asymmetric::ecdh_zgen::EcdhZGen>,
    ),
    def(
        Cc::HMAC,
        &[OBJECT_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<symmetric::hmac::Hmac>,
    ),
    def(
        Cc::Import,
        &[OBJECT_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<duplication::import::Import>,
    ),
    def(
        Cc::Load,
        &[OBJECT_USER],
        true,
        attr::DECRYPT,
        run::<object::load::Load>,
    ),
    def(
        Cc::Quote,
        &[OBJECT_PLUS_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<attestation::quote::Quote>,
    ),
    def(
        Cc::RSA_Decrypt,
        &[OBJECT_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<asymmetric::rsa_decrypt::RsaDecrypt>,
    ),
    def(
        Cc::HMAC_Start,
        &[OBJECT_USER],
        true,
        attr::DECRYPT,
        run::<sequence::hmac_start::HmacStart>,
    ),
    def(
        Cc::SequenceUpdate,
        &[OBJECT_USER],
        false,
        attr::DECRYPT,
        run::<sequence::sequence_update::SequenceUpdate>,
    ),
    def(
        Cc::Sign,
        &[OBJECT_USER],
        false,
        attr::DECRYPT,
        run::<signature::sign::Sign>,
    ),
    def(
        Cc::Unseal,
        &[OBJECT_USER],
        false,
        attr::ENCRYPT,
        run::<object::unseal::Unseal>,
    ),
    def(
        Cc::PolicySigned,
        &[OBJECT, POLICY_SESSION],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<ea::policy_signed::PolicySigned>,
    ),
    def(
        Cc::ContextLoad,
        &[],
        true,
        attr::NO_SESSIONS,
        run::<context::context_load::ContextLoad>,
    ),
    def(
        Cc::ContextSave,
        &[CONTEXT],
        false,
        attr::NO_SESSIONS,
        run::<context::context_save::ContextSave>,
    ),
    def(
        Cc::ECDH_KeyGen,
        &[OBJECT],
        false,
        attr::ENCRYPT,
        run::<asymmetric::ecdh_key_gen::EcdhKeyGen>,
    ),
    def(
        Cc::EncryptDecrypt,
        &[OBJECT_USER],
        false,
        attr::ENCRYPT,
        run::<symmetric::encrypt_decrypt::EncryptDecrypt>,
    ),
    def(
        Cc::FlushContext,
        &[],
        false,
        attr::NO_SESSIONS,
        run::<context::flush_context::FlushContext>,
    ),
    def(
        Cc::LoadExternal,
        &[],
        true,
        attr::DECRYPT | attr::ENCRYPT,
        run::<object::load_external::LoadExternal>,
    ),
    def(
        Cc::MakeCredential,
        &[OBJECT],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<object::make_credential::MakeCredential>,
    ),
    def(
        Cc::NV_ReadPublic,
        &[NV_INDEX],
        false,
        attr::ENCRYPT,
        run::<nv::nv_read_public::NvReadPublic>,
    ),
    def(
        Cc::PolicyAuthorize,
        &[POLICY_SESSION],
        false,
        attr::DECRYPT,
        run::<ea::policy_authorize::PolicyAuthorize>,
    ),
    def(
        Cc::PolicyAuthValue,
        &[POLICY_SESSION],
        false,
        0,
        run::<ea::policy_auth_value::PolicyAuthValue>,
    ),
    def(
        Cc::PolicyCommandCode,
        &[POLICY_SESSION],
        false,
        0,
        run::<ea::policy_command_code::PolicyCommandCode>,
    ),
    def(
        Cc::PolicyCounterTimer,
        &[POLICY_SESSION],
        false,
        attr::DECRYPT,
        run::<ea::policy_counter_timer::PolicyCounterTimer>,
    ),
    def(
        Cc::PolicyCpHash,
        &[POLICY_SESSION],
        false,
        attr::DECRYPT,
        run::<ea::policy_cp_hash::PolicyCpHash>,
    ),
    def(
        Cc::PolicyLocality,
        &[POLICY_SESSION],
        false,
        0,
        run::<ea::policy_locality::PolicyLocality>,
    ),
    def(
        Cc::PolicyNameHash,
        &[POLICY_SESSION],
        false,
        attr::DECRYPT,
        run::<ea::policy_name_hash::PolicyNameHash>,
    ),
    def(
        Cc::PolicyOR,
        &[POLICY_SESSION],
        false,
        0,
        run::<ea::policy_or::PolicyOr>,
    ),
    def(
        Cc::PolicyTicket,
        &[POLICY_SESSION],
        false,
        attr::DECRYPT,
        run::<ea::policy_ticket::PolicyTicket>,
    ),
    def(
        Cc::ReadPublic,
        &[OBJECT],
        false,
        attr::ENCRYPT,
        run::<object::read_public::ReadPublic>,
    ),
    def(
        Cc::RSA_Encrypt,
        &[OBJECT],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<asymmetric::rsa_encrypt::RsaEncrypt>,
    ),
    def(
        Cc::StartAuthSession,
        &[OBJECT_PLUS, ENTITY_PLUS],
        true,
        0,
        run::<session::start_auth_session::StartAuthSession>,
    ),
    def(
        Cc::VerifySignature,
        &[OBJECT],
        false,
        attr::DECRYPT,
        run::<signature::verify_signature::VerifySignature>,
    ),
    def(
        Cc::ECC_Parameters,
        &[],
        false,
        0,
        run::<asymmetric::ecc_parameters::EccParameters>,
    ),
    def(
        Cc::GetCapability,
        &[],
        false,
        0,
        run::<capability::get_capability::GetCapability>,
    ),
    def(
        Cc::GetRandom,
        &[],
        false,
        attr::ENCRYPT,
        run::<random::get_random::GetRandom>,
    ),
    def(
        Cc::GetTestResult,
        &[],
        false,
        attr::ENCRYPT,
        run::<testing::get_test_result::GetTestResult>,
    ),
    def(
        Cc::Hash,
        &[],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<symmetric::hash::Hash>,
    ),
    def(Cc::PCR_Read, &[], false, 0, run::<pcr::pcr_read::PcrRead>),
    def(
        Cc::PolicyPCR,
        &[POLICY_SESSION],
        false,
        attr::DECRYPT,
        run::<ea::policy_pcr::PolicyPcr>,
    ),
    def(
        Cc::PolicyRestart,
        &[POLICY_SESSION],
        false,
        0,
        run::<ea::policy_restart::PolicyRestart>,
    ),
    def(
        Cc::ReadClock,
        &[],
        false,
        0,
        run::<clock::read_clock::ReadClock>,
    ),
    def(
        Cc::PCR_Extend,
        &[PCR_PLUS_USER],
        false,
        0,
        run::<pcr::pcr_extend::PcrExtend>,
    ),
    def(
        Cc::NV_Certify,
        &[OBJECT_PLUS_USER, NV_AUTH_USER, NV_INDEX],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<nv::nv_certify::NvCertify>,
    ),
    def(
        Cc::EventSequenceComplete,
        &[PCR_PLUS_USER, OBJECT_USER],
        false,
        attr::FLUSHED | attr::DECRYPT,
        run::<sequence::event_sequence_complete::EventSequenceComplete>,
    ),
    def(
        Cc::HashSequenceStart,
        &[],
        true,
        attr::DECRYPT,
        run::<sequence::hash_sequence_start::HashSequenceStart>,
    ),
    def(
        Cc::PolicyPhysicalPresence,
        &[POLICY_SESSION],
        false,
        0,
        run::<ea::policy_physical_presence::PolicyPhysicalPresence>,
    ),
    def(
        Cc::PolicyDuplicationSelect,
        &[POLICY_SESSION],
        false,
        attr::DECRYPT,
        run::<ea::policy_duplication_select::PolicyDuplicationSelect>,
    ),
    def(
        Cc::PolicyGetDigest,
        &[POLICY_SESSION],
        false,
        attr::ENCRYPT,
        run::<ea::policy_get_digest::PolicyGetDigest>,
    ),
    def(
        Cc::TestParms,
        &[],
        false,
        0,
        run::<capability::test_parms::TestParms>,
    ),
    def(
        Cc::PolicyPassword,
        &[POLICY_SESSION],
        false,
        0,
        run::<ea::policy_password::PolicyPassword>,
    ),
    def(
        Cc::PolicyNvWritten,
        &[POLICY_SESSION],
        false,
        0,
        run::<ea::policy_nv_written::PolicyNvWritten>,
    ),
    def(
        Cc::PolicyTemplate,
        &[POLICY_SESSION],
        false,
        attr::DECRYPT,
        run::<ea::policy_template::PolicyTemplate>,
    ),
    def(
        Cc::CreateLoaded,
        &[PARENT_PLUS_USER],
        true,
        attr::DECRYPT | attr::ENCRYPT,
        run::<object::create_loaded::CreateLoaded>,
    ),
    def(
        Cc::PolicyAuthorizeNV,
        &[NV_AUTH_USER, NV_INDEX, POLICY_SESSION],
        false,
        0,
        run::<ea::policy_authorize_nv::PolicyAuthorizeNv>,
    ),
    def(
        Cc::EncryptDecrypt2,
        &[OBJECT_USER],
        false,
        attr::DECRYPT | attr::ENCRYPT,
        run::<symmetric::encrypt_decrypt2::EncryptDecrypt2>,
    ),
];
