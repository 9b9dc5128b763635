# Default in-guest test: run by the rig's /init as `sh -e /steps.sh`; exit 0
# means PASS. Environment: TPM2TOOLS_TCTI=device:/dev/tpmrm0 and, from
# /etc/vtpm-test.env (written on the host), PCR16_EXTEND (the SHA-256 digest
# to extend) and PCR16_EXPECTED (SHA-256(0^32 || PCR16_EXTEND)).
# Every boot checks that PCR 16 starts at zero, so in the reboot test the
# second boot proves that the platform reset reached the TPM.

. /usr/lib/vtpm/steps-lib.sh
pcr16() {
	tpm2_pcrread sha256:16 | sed -n 's/^ *16 *: *0x//p' | tr 'A-F' 'a-f'
}

wait_tpmrm0
ls -l /dev/tpm0 /dev/tpmrm0
for f in /sys/class/tpm/tpm0/tpm_version_major /sys/class/tpm/tpm0/device/driver; do
	[ -e "$f" ] && echo "$f: $(cat "$f" 2>/dev/null || readlink "$f")"
done

step "tpm2_getrandom 8 --hex"
r=$(tpm2_getrandom 8 --hex) || fail "tpm2_getrandom failed"
echo "$r"
[ "${#r}" -eq 16 ] || fail "getrandom returned '$r'"

step "tpm2_pcrread sha256:16 (must be zero after reset)"
before=$(pcr16)
echo "$before"
[ "$before" = "0000000000000000000000000000000000000000000000000000000000000000" ] ||
	fail "PCR 16 is not zero at boot: $before"

step "tpm2_pcrextend 16:sha256=$PCR16_EXTEND"
tpm2_pcrextend "16:sha256=$PCR16_EXTEND" || fail "tpm2_pcrextend failed"
after=$(pcr16)
echo "$after"
[ "$after" = "$PCR16_EXPECTED" ] || fail "PCR 16 is $after, expected $PCR16_EXPECTED"

step "tpm2_getcap properties-fixed"
tpm2_getcap properties-fixed >/tmp/fixed || fail "tpm2_getcap failed"
grep -A2 -E 'TPM2_PT_FAMILY_INDICATOR|TPM2_PT_MANUFACTURER:' /tmp/fixed
grep -q '"2.0"' /tmp/fixed || fail "no TPM 2.0 family indicator"

step "tpm2_hash -g sha256 (of 'abc')"
h=$(printf abc | tpm2_hash -g sha256 --hex) || fail "tpm2_hash failed"
h=$(echo "$h" | tr 'A-F' 'a-f')
echo "$h"
[ "$h" = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" ] ||
	fail "wrong SHA-256 of abc: $h"

step "tpm2_selftest --fulltest"
tpm2_selftest --fulltest || fail "tpm2_selftest failed"

step "kernel TPM users"
if [ -r /sys/class/misc/hw_random/rng_current ]; then
	echo "hwrng: $(cat /sys/class/misc/hw_random/rng_current)"
fi
# Benign: the kernel's first self test answers TPM_RC_INITIALIZE (error 256)
# on a TPM that has not seen TPM2_Startup yet; the kernel then starts it.
dmesg | grep -iE 'tpm' |
	grep -vE 'taints kernel|module verification failed|TPM error \(256\) occurred attempting the self test' |
	grep -iE 'error|fail|timed out' && fail "TPM errors in dmesg"
exit 0
