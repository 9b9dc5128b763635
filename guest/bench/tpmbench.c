// SPDX-License-Identifier: Apache-2.0
/*
 * tpmbench: round-trip latency of raw TPM 2.0 commands through a Linux TPM
 * character device (/dev/tpmrm0 or /dev/tpm0), measured inside the guest.
 *
 * For each command: WARMUP untimed round trips, then N timed ones; one
 * round trip is write(command) + read(response), timed with
 * CLOCK_MONOTONIC. Every response must be TPM_RC_SUCCESS.
 *
 *   tpmbench [-d DEV] [-w WARMUP] [-n N] [-c getrandom|pcrextend|all]
 *
 * Output, one line per command (parsed by scripts/guest/bench):
 *   TPMBENCH dev=/dev/tpmrm0 cmd=getrandom n=2000 min=.. p50=.. p90=.. p99=.. max=.. mean=.. (us)
 *
 * Commands:
 *   getrandom  TPM2_GetRandom(32)
 *   pcrextend  TPM2_PCR_Extend(PCR 16, one SHA-256 digest), authorized with
 *              a password session (TPM_RS_PW, empty password); PCR 16 is
 *              resettable and extendable from locality 0 (PC Client).
 *
 * Build: gcc -static -O2 -Wall -Wextra -o tpmbench tpmbench.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const uint8_t cmd_getrandom[] = {
	0x80, 0x01,             /* TPM_ST_NO_SESSIONS */
	0x00, 0x00, 0x00, 0x0c, /* commandSize = 12 */
	0x00, 0x00, 0x01, 0x7b, /* TPM_CC_GetRandom */
	0x00, 0x20,             /* bytesRequested = 32 */
};

static const uint8_t cmd_pcrextend[] = {
	0x80, 0x02,             /* TPM_ST_SESSIONS */
	0x00, 0x00, 0x00, 0x41, /* commandSize = 65 */
	0x00, 0x00, 0x01, 0x82, /* TPM_CC_PCR_Extend */
	0x00, 0x00, 0x00, 0x10, /* pcrHandle = PCR 16 */
	0x00, 0x00, 0x00, 0x09, /* authorizationSize = 9 */
	0x40, 0x00, 0x00, 0x09, /*   sessionHandle = TPM_RS_PW */
	0x00, 0x00,             /*   nonce: empty */
	0x00,                   /*   sessionAttributes */
	0x00, 0x00,             /*   hmac (password): empty */
	0x00, 0x00, 0x00, 0x01, /* TPML_DIGEST_VALUES.count = 1 */
	0x00, 0x0b,             /*   hashAlg = TPM_ALG_SHA256 */
	/*   digest: any 32 bytes */
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* One round trip; returns 0 on TPM_RC_SUCCESS, -1 otherwise (printed). */
static int round_trip(int fd, const uint8_t *cmd, size_t len)
{
	uint8_t rsp[4096];
	ssize_t n;

	n = write(fd, cmd, len);
	if (n != (ssize_t)len) {
		fprintf(stderr, "tpmbench: write: %s\n",
			n < 0 ? strerror(errno) : "short write");
		return -1;
	}
	n = read(fd, rsp, sizeof(rsp));
	if (n < 10) {
		fprintf(stderr, "tpmbench: read: %s\n",
			n < 0 ? strerror(errno) : "short response");
		return -1;
	}
	if (be32(rsp + 2) != (uint32_t)n) {
		fprintf(stderr, "tpmbench: response size %u, read %zd\n",
			be32(rsp + 2), n);
		return -1;
	}
	if (be32(rsp + 6) != 0) {
		fprintf(stderr, "tpmbench: TPM error 0x%03x\n", be32(rsp + 6));
		return -1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, int n, double p)
{
	int i = (int)(p / 100.0 * n + 0.999999) - 1;

	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static int bench(const char *dev, const char *name, const uint8_t *cmd,
		 size_t len, int warmup, int n)
{
	struct timespec t0, t1;
	double *us, sum = 0;
	int fd, i;

	fd = open(dev, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "tpmbench: open %s: %s\n", dev, strerror(errno));
		return -1;
	}
	us = calloc((size_t)n, sizeof(*us));
	if (!us) {
		close(fd);
		return -1;
	}
	for (i = 0; i < warmup; i++) {
		if (round_trip(fd, cmd, len))
			goto fail;
	}
	for (i = 0; i < n; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (round_trip(fd, cmd, len))
			goto fail;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		us[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
		sum += us[i];
	}
	qsort(us, (size_t)n, sizeof(*us), cmp_double);
	printf("TPMBENCH dev=%s cmd=%s n=%d min=%.1f p50=%.1f p90=%.1f p99=%.1f max=%.1f mean=%.1f (us)\n",
	       dev, name, n, us[0], pct(us, n, 50), pct(us, n, 90),
	       pct(us, n, 99), us[n - 1], sum / n);
	fflush(stdout);
	free(us);
	close(fd);
	return 0;
fail:
	fprintf(stderr, "tpmbench: %s on %s failed at iteration %d\n", name,
		dev, i);
	free(us);
	close(fd);
	return -1;
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/tpmrm0", *which = "all";
	int warmup = 200, n = 2000, opt, rc = 0;

	while ((opt = getopt(argc, argv, "d:w:n:c:h")) != -1) {
		switch (opt) {
		case 'd':
			dev = optarg;
			break;
		case 'w':
			warmup = atoi(optarg);
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case 'c':
			which = optarg;
			break;
		default:
			fprintf(stderr,
				"usage: tpmbench [-d DEV] [-w WARMUP] [-n N] [-c getrandom|pcrextend|all]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (be32(cmd_getrandom + 2) != sizeof(cmd_getrandom) ||
	    be32(cmd_pcrextend + 2) != sizeof(cmd_pcrextend)) {
		fprintf(stderr, "tpmbench: bad command sizes\n");
		return 2;
	}
	if (n < 1 || warmup < 0) {
		fprintf(stderr, "tpmbench: bad -n / -w\n");
		return 2;
	}
	if (!strcmp(which, "all") || !strcmp(which, "getrandom"))
		rc |= bench(dev, "getrandom", cmd_getrandom,
			    sizeof(cmd_getrandom), warmup, n);
	if (!strcmp(which, "all") || !strcmp(which, "pcrextend"))
		rc |= bench(dev, "pcrextend", cmd_pcrextend,
			    sizeof(cmd_pcrextend), warmup, n);
	return rc ? 1 : 0;
}
