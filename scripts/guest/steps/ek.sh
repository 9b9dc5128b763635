# In-guest test of a manufactured vTPM (`vtpm create --ca`, `vtpm clone`):
# the EK certificates are read from the TCG NV indices (tpm2_nvread, and
# tpm2_getekcertificate for the low range), verified against the CA
# certificate the host copied to /etc/vtpm-ca.pem with OpenSSL, and their
# public keys compared with the EKs the guest derives itself: tpm2_createek
# (templates L-1 and L-2) and tpm2_createprimary with template H-3 spelled
# out (P-384; EK_POLICY_B384 = PolicyB(SHA-384) in hex, computed on the
# host). For each EK the guest prints
#   VTPM-EK: <kind> <SHA-256 of the SubjectPublicKeyInfo DER>
# so that the host can compare identities across clones.

. /usr/lib/vtpm/steps-lib.sh
[ -f /etc/vtpm-ca.pem ] || fail "no /etc/vtpm-ca.pem"
[ -n "$EK_POLICY_B384" ] || fail "no EK_POLICY_B384 in /etc/vtpm-test.env"

wait_tpmrm0

# spki_sha256 PEM: SHA-256 of the DER SubjectPublicKeyInfo of a public key.
spki_sha256() {
	openssl pkey -pubin -in "$1" -outform DER | sha256sum | cut -d' ' -f1
}

# check_ek KIND INDEX EKPEM: the certificate at INDEX chains to the CA and
# certifies the key in EKPEM (derived by the guest).
check_ek() {
	kind="$1" index="$2" ekpem="$3"
	step "$kind: tpm2_nvread $index -C o, openssl verify -CAfile /etc/vtpm-ca.pem"
	tpm2_nvread "$index" -C o -o "/tmp/$kind.der" || fail "tpm2_nvread $index failed"
	openssl x509 -inform DER -in "/tmp/$kind.der" -out "/tmp/$kind.pem" ||
		fail "$kind: NV $index does not hold a DER certificate"
	openssl x509 -in "/tmp/$kind.pem" -noout -issuer -ext keyUsage,extendedKeyUsage,basicConstraints ||
		fail "openssl x509 -text failed"
	openssl verify -CAfile /etc/vtpm-ca.pem "/tmp/$kind.pem" >/tmp/verify.out 2>&1 || true
	cat /tmp/verify.out
	grep -q ": OK\$" /tmp/verify.out || fail "$kind: the certificate does not chain to the CA"
	step "$kind: the certificate's key is the EK the guest derived"
	openssl x509 -in "/tmp/$kind.pem" -noout -pubkey >"/tmp/$kind-cert-pub.pem" ||
		fail "openssl x509 -pubkey failed"
	cert_sum="$(spki_sha256 "/tmp/$kind-cert-pub.pem")"
	ek_sum="$(spki_sha256 "$ekpem")"
	echo "certificate key $cert_sum, derived EK $ek_sum"
	[ "$cert_sum" = "$ek_sum" ] || fail "$kind: the certificate is not for the guest's EK"
	echo "VTPM-EK: $kind $ek_sum"
}

step "tpm2_createek -G rsa (template L-1)"
tpm2_createek -G rsa -c /tmp/ek-rsa.ctx -u /tmp/ek-rsa.pem -f pem || fail "tpm2_createek -G rsa failed"
check_ek rsa2048 0x01c00002 /tmp/ek-rsa.pem

step "tpm2_createek -G ecc (template L-2)"
tpm2_createek -G ecc -c /tmp/ek-ecc.ctx -u /tmp/ek-ecc.pem -f pem || fail "tpm2_createek -G ecc failed"
check_ek ecc-p256 0x01c0000a /tmp/ek-ecc.pem

step "tpm2_createprimary -C e with template H-3 (ECC P-384, SHA-384, PolicyB)"
printf "$(echo "$EK_POLICY_B384" | sed 's/../\\x&/g')" >/tmp/policy-b384
[ "$(wc -c </tmp/policy-b384)" = 48 ] || fail "EK_POLICY_B384 is not 48 bytes"
tpm2_createprimary -C e -g sha384 -G ecc384:null:aes256cfb \
	-a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|adminwithpolicy|restricted|decrypt" \
	-L /tmp/policy-b384 -c /tmp/ek-p384.ctx -f pem -o /tmp/ek-p384.pem >/dev/null ||
	fail "tpm2_createprimary (H-3) failed"
check_ek ecc-p384 0x01c00016 /tmp/ek-p384.pem

step "tpm2_getekcertificate (low range) returns the same certificates"
tpm2_getekcertificate -o /tmp/get-rsa.der -o /tmp/get-ecc.der || fail "tpm2_getekcertificate failed"
cmp /tmp/get-rsa.der /tmp/rsa2048.der || fail "tpm2_getekcertificate: another RSA certificate"
cmp /tmp/get-ecc.der /tmp/ecc-p256.der || fail "tpm2_getekcertificate: another ECC certificate"
exit 0
