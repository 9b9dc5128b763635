# In-guest side of the live-migration test (scripts/guest/migrate). The guest
# puts state into the TPM, then keeps using it while the host migrates the VM
# (and with it the TPM's state: QEMU's GET_STATEBLOB on the source backend,
# SET_STATEBLOB on the destination's), until the host types "done" on the
# console; then it checks that everything survived and that the TPM still
# works.
#
# State put in before the migration:
#  - PCR 16 extended (volatile: PCRs are reset only by a TPM reset);
#  - an NV index defined and written (permanent state);
#  - the owner hierarchy's auth value changed (permanent state);
#  - a SHA-256 hash sequence started and fed a first part, through /dev/tpm0
#    (no resource manager, so the sequence object stays loaded in the TPM:
#    volatile state, a transient object in flight across the migration);
#  - TPM2_ReadClock's resetCount / restartCount (and the clock).
# Console protocol (read by the host):
#   VTPM-MIG-STATE pcr16=H nv=H reset=N restart=N clock=N
#   VTPM-MIG-READY
#   VTPM-MIG-TICK n pcr16=H nv=H reset=N restart=N clock=N ok|MISMATCH
#     (every ~200 ms, each a fresh round of TPM commands)
# After "done": the sequence is completed (digest of both parts), PCR 16
# extended again, the NV index rewritten, the owner auth changed back with
# the old value, plus GetRandom and a self test.

# shellcheck disable=SC2086,SC3045  # word-split "r s c" on purpose; busybox sh has read -t
. /usr/lib/vtpm/steps-lib.sh
IDX=0x1500020
OWNER_AUTH=vtpm-migration-owner
hexof() { xxd -p | tr -d '\n'; }
sha256hex() { sha256sum | cut -d' ' -f1; }
pcr16() { tpm2_pcrread sha256:16 | sed -n 's/^ *16 *: *0x//p' | tr 'A-F' 'a-f'; }
nvread() { tpm2_nvread "$IDX" -C "$IDX" -s 32 | hexof; }
# "reset restart clock" from TPM2_ReadClock
readclock() {
	tpm2_readclock >/tmp/clock || return 1
	awk '/reset_count:/ { r = $2 } /restart_count:/ { s = $2 } /^ *clock:/ { c = $2 }
	     END { print r, s, c }' /tmp/clock
}
# Raw TPM command (hex) to /dev/tpm0; prints the response (hex); fails
# unless the response code is TPM_RC_SUCCESS.
raw() {
	echo "$1" | xxd -r -p >/tmp/cmd
	tpm2_send -T device:/dev/tpm0 -o /tmp/rsp </tmp/cmd || return 1
	r=$(hexof </tmp/rsp)
	rc=$(echo "$r" | cut -c13-20)
	[ "$rc" = 00000000 ] || {
		echo "raw command ${1%"${1#????????????????????}"}...: response $r" >&2
		return 1
	}
	echo "$r"
}
pw_session=400000090000000000 # TPM_RS_PW, empty nonce, no attributes, empty password
# TPM2_SequenceUpdate(handle $1, data $2 as text)
seq_update() {
	d=$(printf %s "$2" | hexof)
	raw "8002$(printf %08x $((29 + ${#2})))0000015c${1}00000009${pw_session}$(printf %04x ${#2})$d" >/dev/null
}

wait_tpmrm0
echo "driver: $(readlink /sys/class/tpm/tpm0/device/driver)"

step "before migration: extend PCR 16"
D1=$(printf 'vtpm migration: before' | sha256hex)
tpm2_pcrextend "16:sha256=$D1"
P1=$(pcr16)
[ "$P1" = "$(printf '%064d%s' 0 "$D1" | xxd -r -p | sha256hex)" ] || fail "PCR 16 is $P1 after the first extend"

step "before migration: NV index $IDX (define, write)"
NV1=$(printf 'vtpm migration: NV before' | sha256hex)
tpm2_nvdefine "$IDX" -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
echo "$NV1" | xxd -r -p | tpm2_nvwrite "$IDX" -C "$IDX" -i-
[ "$(nvread)" = "$NV1" ] || fail "NV index reads $(nvread)"

step "before migration: owner auth changed"
tpm2_changeauth -c o "$OWNER_AUTH"

step "before migration: hash sequence on /dev/tpm0 (stays loaded across the migration)"
PART1="vtpm live migration, part one; "
PART2="part two, after the migration"
r=$(raw 80010000000e000001860000000b) || fail "TPM2_HashSequenceStart failed"
SEQ=$(echo "$r" | cut -c21-28)
echo "sequence handle 0x$SEQ"
seq_update "$SEQ" "$PART1" || fail "TPM2_SequenceUpdate failed"

c=$(readclock) || fail "tpm2_readclock failed"
set -- $c
RESET=$1 RESTART=$2 CLOCK=$3
echo "VTPM-MIG-STATE pcr16=$P1 nv=$NV1 reset=$RESET restart=$RESTART clock=$CLOCK"
echo "VTPM-MIG-READY"

step "using the TPM every ~200 ms until the host types 'done'"
n=0
bad=0
while :; do
	n=$((n + 1))
	p=$(pcr16) || p=ERROR
	v=$(nvread) || v=ERROR
	c=$(readclock) || c="ERROR ERROR ERROR"
	set -- $c
	st=ok
	if [ "$p" != "$P1" ] || [ "$v" != "$NV1" ] || [ "$1" != "$RESET" ] || [ "$2" != "$RESTART" ]; then
		st=MISMATCH
		bad=$((bad + 1))
	fi
	echo "VTPM-MIG-TICK $n pcr16=$p nv=$v reset=$1 restart=$2 clock=$3 $st"
	if read -r -t 0.2 line; then
		[ "$line" != "done" ] || break
	fi
	[ "$n" -lt 2000 ] || fail "no 'done' from the host after $n rounds"
done
[ "$bad" -eq 0 ] || fail "$bad of $n rounds saw different TPM state"

step "after migration: clock"
c=$(readclock) || fail "tpm2_readclock failed"
set -- $c
echo "reset_count $1 restart_count $2 clock $3 (before: $RESET $RESTART $CLOCK)"
if [ "$1" != "$RESET" ] || [ "$2" != "$RESTART" ]; then fail "reset/restart counts changed"; fi
[ "$3" -ge "$CLOCK" ] || fail "the TPM clock went backwards: $CLOCK -> $3"

step "after migration: finish the hash sequence started before it"
seq_update "$SEQ" "$PART2" || fail "TPM2_SequenceUpdate on the sequence started before the migration failed"
# TPM2_SequenceComplete(sequence, empty buffer, hierarchy TPM_RH_NULL)
r=$(raw "8002""00000021""0000013e""$SEQ""00000009""$pw_session""0000""40000007") ||
	fail "TPM2_SequenceComplete failed"
got=$(echo "$r" | cut -c33-96)
want=$(printf %s "$PART1$PART2" | sha256hex)
echo "sequence digest $got"
[ "$got" = "$want" ] || fail "sequence digest $got, expected SHA-256 of both parts $want"

step "after migration: extend PCR 16 again"
D2=$(printf 'vtpm migration: after' | sha256hex)
tpm2_pcrextend "16:sha256=$D2"
P2=$(pcr16)
want=$(printf '%s%s' "$P1" "$D2" | xxd -r -p | sha256hex)
echo "$P2"
[ "$P2" = "$want" ] || fail "PCR 16 is $P2, expected $want"

step "after migration: rewrite the NV index"
NV2=$(printf 'vtpm migration: NV after' | sha256hex)
echo "$NV2" | xxd -r -p | tpm2_nvwrite "$IDX" -C "$IDX" -i-
[ "$(nvread)" = "$NV2" ] || fail "NV index reads $(nvread) after the write"

step "after migration: the owner auth set before it still holds"
if tpm2_nvread "$IDX" -C o -s 32 >/dev/null 2>&1; then
	fail "owner-authorized NV read with an empty auth succeeded: the owner auth was lost"
fi
tpm2_nvread "$IDX" -C o -P "$OWNER_AUTH" -s 32 | hexof >/tmp/nv
[ "$(cat /tmp/nv)" = "$NV2" ] || fail "owner-authorized NV read gave $(cat /tmp/nv)"
tpm2_changeauth -c o -p "$OWNER_AUTH"
tpm2_nvundefine "$IDX" -C o

step "after migration: tpm2_getrandom, tpm2_selftest"
r=$(tpm2_getrandom 16 --hex)
echo "$r"
[ "${#r}" -eq 32 ] || fail "getrandom returned '$r'"
tpm2_selftest --fulltest
echo "VTPM-MIG: PASS ($n rounds)"
exit 0
