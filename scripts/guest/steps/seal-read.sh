# In-guest test, sealing to a PCR policy, boot 2 of 2 (see
# steps/seal-write.sh): a new backend process on the same state file. The
# sealed object at SEAL_HANDLE unseals through a policy session satisfying
# PolicyPCR(sha256:7) (the host compares the printed secret with the one it
# chose), not with a password (no userWithAuth), and no more once PCR 7 has
# been extended.

. /usr/lib/vtpm/steps-lib.sh
[ -n "$SEAL_HANDLE" ] || fail "no SEAL_HANDLE in /etc/vtpm-test.env"

wait_tpmrm0

step "tpm2_getcap handles-persistent"
tpm2_getcap handles-persistent | tee /tmp/persistent
grep -qi "$SEAL_HANDLE" /tmp/persistent || fail "$SEAL_HANDLE is gone"

step "tpm2_pcrread sha256:7"
tpm2_pcrread sha256:7 || fail "tpm2_pcrread failed"

# unseal_policy OUT: a policy session with PolicyPCR(sha256:7), then
# tpm2_unseal; the session is flushed either way.
unseal_policy() {
	tpm2_startauthsession --policy-session -S /tmp/session.ctx ||
		fail "tpm2_startauthsession --policy-session failed"
	tpm2_policypcr -S /tmp/session.ctx -l sha256:7 >/dev/null || fail "tpm2_policypcr failed"
	r=0
	tpm2_unseal -p session:/tmp/session.ctx -c "$SEAL_HANDLE" -o "$1" 2>/tmp/unseal.err || r=$?
	cat /tmp/unseal.err
	tpm2_flushcontext /tmp/session.ctx || fail "tpm2_flushcontext failed"
	return "$r"
}

step "tpm2_unseal -c $SEAL_HANDLE with a password (no userWithAuth): must fail"
if tpm2_unseal -c "$SEAL_HANDLE" -o /tmp/pw-out 2>/tmp/pw.err; then
	fail "unsealed with a password though the object has no userWithAuth"
fi
cat /tmp/pw.err
echo "VTPM-SEAL-PASSWORD-REFUSED: $(grep -m1 -oiE '0x[0-9a-f]+' /tmp/pw.err)"

step "tpm2_unseal -c $SEAL_HANDLE -p session: (PolicyPCR sha256:7)"
unseal_policy /tmp/unsealed || fail "tpm2_unseal with the policy session failed"
echo "VTPM-SEAL-UNSEALED: $(cat /tmp/unsealed)"

step "tpm2_pcrextend 7:sha256=SHA-256(\"vtpm seal test\")"
tpm2_pcrextend "7:sha256=$(printf 'vtpm seal test' | sha256sum | cut -d' ' -f1)" ||
	fail "tpm2_pcrextend failed"
tpm2_pcrread sha256:7 || fail "tpm2_pcrread failed"

step "tpm2_unseal with the policy session after the extend: must fail"
if unseal_policy /tmp/unsealed-2; then
	fail "unsealed after PCR 7 changed: $(cat /tmp/unsealed-2)"
fi
echo "VTPM-SEAL-REFUSED-AFTER-EXTEND: $(grep -m1 -oiE '0x[0-9a-f]+' /tmp/unseal.err)"

step "tpm2_evictcontrol -C o -c $SEAL_HANDLE (remove it)"
tpm2_evictcontrol -C o -c "$SEAL_HANDLE" || fail "tpm2_evictcontrol (remove) failed"
exit 0
