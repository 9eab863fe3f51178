/*
 * seal: endpoint signing secrets encrypted at rest, AES-256-GCM.
 *
 * The master key file holds one line per key version, "<version> <64 hex>",
 * and is created with mode 0600 (one random version-1 key) when absent. The
 * newest version seals; any version in the file opens, so the key can be
 * rotated by appending a line. A sealed value is text, so it fits any store:
 *     "s1:" base64( version | 12-byte nonce | ciphertext | 16-byte tag )
 * with the endpoint's id as associated data, so a sealed secret copied onto
 * another endpoint's row does not open. Values without the "s1:" prefix are
 * plaintext from before sealing and open as themselves.
 */
#ifndef HK_SEAL_H
#define HK_SEAL_H

#include <stddef.h>

#define SEAL_MAX_KEYS 16

struct seal {
	int n;
	struct {
		unsigned char version;
		unsigned char key[32];
	} keys[SEAL_MAX_KEYS];
};

/* Load the key file at path, creating it (0600, one new key) when absent.
 * 0, or -1 with a message in errbuf (an unreadable, malformed or
 * group/world-readable file is refused). */
int seal_load(const char *path, struct seal *s, char *errbuf, size_t errcap);

/* Seal plain for the endpoint id: a new malloc'd string, or NULL. */
char *seal_close(const struct seal *s, const char *id, const char *plain);

/* Open a value sealed for id (or a plaintext one): a new malloc'd string,
 * or NULL when it does not open (wrong key, wrong id, tampered). */
char *seal_open(const struct seal *s, const char *id, const char *value);

#endif
