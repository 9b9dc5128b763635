# In-guest test, persistence across a backend restart, boot 2 of 2 (see
# steps/persist-write.sh): a new backend process on the same state file; the
# NV index defined and written in boot 1 must be there with the same data.

. /usr/lib/vtpm/steps-lib.sh
# shellcheck disable=SC2059  # the format is \xNN escapes only
printf "$(printf '%s' "$NV_DATA" | sed 's/../\\x&/g')" >/tmp/nv-data
[ "$(wc -c </tmp/nv-data)" -eq 32 ] || fail "NV_DATA is not 32 bytes"

wait_tpmrm0

step "tpm2_getcap handles-nv-index"
tpm2_getcap handles-nv-index | tee /tmp/nv-list
grep -qi "$NV_INDEX" /tmp/nv-list || fail "$NV_INDEX is gone"

step "tpm2_nvreadpublic $NV_INDEX"
tpm2_nvreadpublic "$NV_INDEX" >/tmp/nv-public || fail "tpm2_nvreadpublic failed"
cat /tmp/nv-public
for a in ownerread ownerwrite written; do
	grep -q "$a" /tmp/nv-public || fail "attribute $a lost"
done

step "tpm2_nvread $NV_INDEX -C o"
tpm2_nvread "$NV_INDEX" -C o -o /tmp/nv-read || fail "tpm2_nvread failed"
od -An -tx1 /tmp/nv-read
cmp /tmp/nv-data /tmp/nv-read || fail "the data did not survive the backend restart"

step "PCR 16 is zero (a new TPM process: PCRs are not persistent)"
p=$(tpm2_pcrread sha256:16 | sed -n 's/^ *16 *: *0x//p')
echo "$p"
[ "$p" = "0000000000000000000000000000000000000000000000000000000000000000" ] ||
	fail "PCR 16 is $p"

step "tpm2_nvundefine $NV_INDEX -C o"
tpm2_nvundefine "$NV_INDEX" -C o || fail "tpm2_nvundefine failed"
exit 0
