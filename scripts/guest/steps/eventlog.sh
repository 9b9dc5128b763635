# In-guest test: measured boot. Boot under OVMF (UEFI firmware with TCG2
# measurements) with a TPM attached through QEMU's -tpmdev emulator; the
# firmware extends PCRs 0-7 (and the EFI stub more) and hands the kernel its
# event log. This script replays the log with tpm2_eventlog and compares the
# replayed SHA-256 PCR values with what the TPM itself reports
# (tpm2_pcrread), PCR by PCR. Prints "VTPM-EVENTLOG: PASS|FAIL ..." and
# exits non-zero on any mismatch.
# Then it probes whether the firmware locked the platform hierarchy down
# (edk2's TpmPlatformHierarchyLib sets a random platformAuth at EndOfDxe, or
# disables the hierarchy): TPM2_HierarchyChangeAuth(TPM_RH_PLATFORM) with
# the empty auth value (and an empty new one, so it changes nothing if it
# succeeds) must fail with an authorization (or hierarchy) error. The result
# is its own line, "VTPM-PH-LOCKDOWN: PASS|FAIL ...", which
# scripts/guest/qemu-tests reports as a separate check; it does not change
# this script's exit status. Used by scripts/guest/qemu-tests:
#   scripts/guest/qemu-tests --only ovmf

. /usr/lib/vtpm/steps-lib.sh
fail() {
	echo "VTPM-EVENTLOG: FAIL $*"
	echo "VTPM-STEP-FAIL: $*"
	exit 1
}

wait_tpmrm0
echo "driver: $(readlink /sys/class/tpm/tpm0/device/driver 2>/dev/null)"
[ -d /sys/firmware/efi ] || fail "not booted through UEFI (no /sys/firmware/efi)"
echo "booted through UEFI"

log=/sys/kernel/security/tpm0/binary_bios_measurements
step "event log $log"
[ -r "$log" ] || {
	ls -l /sys/kernel/security/tpm0/ 2>&1
	dmesg | grep -iE 'tpm|tcg|event ?log' | tail -n 20
	fail "no event log at $log"
}
cat "$log" >/tmp/log.bin
echo "$(wc -c </tmp/log.bin) bytes"
tpm2_eventlog /tmp/log.bin >/tmp/log.yaml 2>/tmp/log.err || {
	tail -n 20 /tmp/log.err
	fail "tpm2_eventlog could not parse the log"
}
events=$(grep -c 'EventType:' /tmp/log.yaml || true)
echo "$events events; by PCR:"
grep -E '^ *PCRIndex:' /tmp/log.yaml | awk '{ n[$2]++ } END { for (p in n) printf "  PCR %s: %d events\n", p, n[p] }' | sort -n -k2
grep -E 'EventType:' /tmp/log.yaml | awk '{ n[$2]++ } END { for (t in n) printf "  %s: %d\n", t, n[t] }' | sort

# The replayed values: the "pcrs:" section at the end of the YAML,
#   pcrs:
#     sha256:
#       0  : 0x...
step "replayed SHA-256 PCRs (tpm2_eventlog) vs the TPM (tpm2_pcrread)"
awk '/^pcrs:/ { p = 1; next }
     p && /^  [a-z0-9_]+:/ { bank = $1; sub(":", "", bank); next }
     p && bank == "sha256" && /^ +[0-9]+ *: *0x/ {
         n = $1; sub(":", "", n); v = $NF; sub(":", "", v); print n, v }' /tmp/log.yaml |
	tr 'A-F' 'a-f' | sed 's/0x//' >/tmp/replayed
[ -s /tmp/replayed ] || {
	tail -n 30 /tmp/log.yaml
	fail "tpm2_eventlog printed no replayed sha256 PCRs"
}
bad=0
checked=""
while read -r n want; do
	got=$(tpm2_pcrread "sha256:$n" | sed -n "s/^ *$n *: *0x//p" | tr 'A-F' 'a-f')
	if [ "$got" = "$want" ]; then
		echo "  PCR $n: $got  ok"
	else
		echo "  PCR $n: MISMATCH"
		echo "     log replay: $want"
		echo "     TPM:        $got"
		bad=$((bad + 1))
	fi
	checked="$checked $n"
done </tmp/replayed
echo "checked PCRs:$checked"
for n in 0 2 4 7; do
	case " $checked " in *" $n "*) ;; *) bad=$((bad + 1)); echo "  PCR $n: not covered by the log" ;; esac
done
zero=0000000000000000000000000000000000000000000000000000000000000000
[ "$(grep -c " $zero\$" /tmp/replayed || true)" -lt "$(wc -l </tmp/replayed)" ] || fail "every replayed PCR is zero"
[ "$bad" -eq 0 ] || fail "$bad PCR(s) differ between the event log and the TPM"
echo "VTPM-EVENTLOG: PASS ($events events, PCRs$checked)"

step "platform hierarchy locked by the firmware? (HierarchyChangeAuth(platform) with the empty auth)"
if tpm2_changeauth -c p 2>/tmp/ph.err; then
	echo "VTPM-PH-LOCKDOWN: FAIL the platform hierarchy still has the empty auth value after boot (the firmware's TPM2_HierarchyChangeAuth / TPM2_HierarchyControl did not take effect)"
elif grep -qiE '0x9a2|0x98e|0x[0-9a-f]*85\)|authorization failure|hierarchy' /tmp/ph.err; then
	grep -E '^ERROR: Esys' /tmp/ph.err
	echo "VTPM-PH-LOCKDOWN: PASS (platform auth refused: the firmware randomized it)"
else
	cat /tmp/ph.err
	echo "VTPM-PH-LOCKDOWN: FAIL unexpected error from TPM2_HierarchyChangeAuth"
fi
exit 0
