/*
 * seal: AES-256-GCM for secrets at rest, on OpenSSL's EVP. See seal.h.
 */
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"

#define PREFIX "s1:"
#define NONCE 12
#define TAG 16

static int create_file(const char *path, char *errbuf, size_t cap)
{
	unsigned char key[32];
	char hex[65], line[80];
	if (RAND_bytes(key, sizeof(key)) != 1) {
		snprintf(errbuf, cap, "no randomness for a master key");
		return -1;
	}
	secret_to_hex(key, sizeof(key), hex);
	int n = snprintf(line, sizeof(line), "1 %s\n", hex);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
		snprintf(errbuf, cap, "cannot create master key file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int parse_line(const char *line, struct seal *s)
{
	unsigned version;
	char hex[80];
	if (sscanf(line, "%u %79s", &version, hex) != 2 || version < 1 || version > 255 ||
	    strlen(hex) != 64 || s->n == SEAL_MAX_KEYS)
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned b;
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		s->keys[s->n].key[i] = (unsigned char)b;
	}
	s->keys[s->n++].version = (unsigned char)version;
	return 0;
}

int seal_load(const char *path, struct seal *s, char *errbuf, size_t cap)
{
	memset(s, 0, sizeof(*s));
	struct stat st;
	if (stat(path, &st) != 0 && (errno != ENOENT || create_file(path, errbuf, cap) != 0)) {
		if (errno != ENOENT)
			snprintf(errbuf, cap, "cannot read master key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (stat(path, &st) == 0 && (st.st_mode & 077)) {
		snprintf(errbuf, cap, "master key file %s must not be readable by group or others (chmod 600)", path);
		return -1;
	}
	FILE *f = fopen(path, "r");
	char line[160];
	while (f && fgets(line, sizeof(line), f)) {
		if (line[0] != '#' && line[0] != '\n' && parse_line(line, s) != 0) {
			snprintf(errbuf, cap, "malformed line in master key file %s", path);
			fclose(f);
			return -1;
		}
	}
	if (f)
		fclose(f);
	if (s->n == 0) {
		snprintf(errbuf, cap, "no key in master key file %s", path);
		return -1;
	}
	return 0;
}

/* AES-256-GCM one way or the other; returns the output length or -1. */
static int gcm(int enc, const unsigned char *key, const unsigned char *nonce, const char *aad,
               const unsigned char *in, int inl, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0, ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) &&
	                       EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) &&
	                       EVP_CipherUpdate(c, out, &n, in, inl);
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG, tag);
	ok = ok && EVP_CipherFinal_ex(c, out + n, &m);
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG, tag);
	EVP_CIPHER_CTX_free(c);
	return ok ? n + m : -1;
}

char *seal_close(const struct seal *s, const char *id, const char *plain)
{
	int pl = (int)strlen(plain);
	int raw_len = 1 + NONCE + pl + TAG;
	unsigned char *raw = malloc((size_t)raw_len);
	char *out = malloc(sizeof(PREFIX) + 4 * ((size_t)raw_len + 2) / 3 + 1);
	/* The newest version seals. */
	int k = 0;
	for (int i = 1; i < s->n; i++)
		if (s->keys[i].version > s->keys[k].version)
			k = i;
	if (!raw || !out || RAND_bytes(raw + 1, NONCE) != 1 ||
	    gcm(1, s->keys[k].key, raw + 1, id, (const unsigned char *)plain, pl, raw + 1 + NONCE,
	        raw + 1 + NONCE + pl) != pl) {
		free(raw);
		free(out);
		return NULL;
	}
	raw[0] = s->keys[k].version;
	memcpy(out, PREFIX, strlen(PREFIX));
	EVP_EncodeBlock((unsigned char *)out + strlen(PREFIX), raw, raw_len);
	free(raw);
	return out;
}

char *seal_open(const struct seal *s, const char *id, const char *value)
{
	if (strncmp(value, PREFIX, strlen(PREFIX)) != 0)
		return strdup(value);
	const char *b64 = value + strlen(PREFIX);
	size_t bl = strlen(b64);
	if (bl % 4 != 0 || bl < 4)
		return NULL;
	unsigned char *raw = malloc(bl / 4 * 3);
	int rl = raw ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)bl) : -1;
	for (size_t i = bl; rl > 0 && i > 0 && b64[i - 1] == '='; i--)
		rl--;
	char *plain = NULL;
	int k = 0;
	while (rl >= 1 + NONCE + TAG && k < s->n && s->keys[k].version != raw[0])
		k++;
	int pl = rl - 1 - NONCE - TAG;
	if (rl >= 1 + NONCE + TAG && k < s->n && (plain = malloc((size_t)pl + 1)) &&
	    gcm(0, s->keys[k].key, raw + 1, id, raw + 1 + NONCE, pl, (unsigned char *)plain,
	        raw + 1 + NONCE + pl) == pl) {
		plain[pl] = '\0';
	} else {
		free(plain);
		plain = NULL;
	}
	free(raw);
	return plain;
}
