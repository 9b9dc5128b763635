# In-guest test, sealing to a PCR policy, boot 1 of 2: a primary under the
# owner hierarchy, a trial PolicyPCR(sha256:7) session for the policy digest,
# a sealed data object with that policy and no userWithAuth holding
# SEAL_SECRET (from /etc/vtpm-test.env, chosen on the host), made persistent
# at SEAL_HANDLE (files in the guest do not survive a reboot); then the guest
# powers off. The host restarts the backend on the same state file and boot 2
# (steps/seal-read.sh) unseals through a policy session.

. /usr/lib/vtpm/steps-lib.sh
[ -n "$SEAL_SECRET" ] || fail "no SEAL_SECRET in /etc/vtpm-test.env"
[ -n "$SEAL_HANDLE" ] || fail "no SEAL_HANDLE in /etc/vtpm-test.env"
printf '%s' "$SEAL_SECRET" >/tmp/secret

wait_tpmrm0

step "$SEAL_HANDLE is not used yet (fresh state file)"
tpm2_getcap handles-persistent | tee /tmp/persistent-before
grep -qi "$SEAL_HANDLE" /tmp/persistent-before && fail "$SEAL_HANDLE already in use"

step "tpm2_pcrread sha256:7"
tpm2_pcrread sha256:7 || fail "tpm2_pcrread failed"

step "tpm2_createprimary -C o"
tpm2_createprimary -C o -c /tmp/primary.ctx >/dev/null || fail "tpm2_createprimary failed"

step "trial session: tpm2_policypcr -l sha256:7 -L pol"
tpm2_startauthsession -S /tmp/trial.ctx || fail "tpm2_startauthsession (trial) failed"
tpm2_policypcr -S /tmp/trial.ctx -l sha256:7 -L /tmp/pol || fail "tpm2_policypcr (trial) failed"
tpm2_flushcontext /tmp/trial.ctx || fail "tpm2_flushcontext (trial) failed"
od -An -tx1 /tmp/pol

step "tpm2_create -L pol -a fixedtpm|fixedparent -i secret (sealed data object)"
tpm2_create -C /tmp/primary.ctx -L /tmp/pol -a "fixedtpm|fixedparent" -i /tmp/secret \
	-u /tmp/seal.pub -r /tmp/seal.priv >/tmp/create.out || fail "tpm2_create failed"
grep -E 'type|attributes|authorization policy' -A1 /tmp/create.out | head -n 12

step "tpm2_load, tpm2_evictcontrol -C o $SEAL_HANDLE"
tpm2_load -C /tmp/primary.ctx -u /tmp/seal.pub -r /tmp/seal.priv -c /tmp/seal.ctx ||
	fail "tpm2_load failed"
tpm2_evictcontrol -C o -c /tmp/seal.ctx "$SEAL_HANDLE" || fail "tpm2_evictcontrol failed"
tpm2_getcap handles-persistent | tee /tmp/persistent-after
grep -qi "$SEAL_HANDLE" /tmp/persistent-after || fail "$SEAL_HANDLE not listed"

step "tpm2_shutdown -c (orderly, as a guest OS does at power off)"
tpm2_shutdown -c || echo "(tpm2_shutdown failed; the backend must not need it)"
exit 0
