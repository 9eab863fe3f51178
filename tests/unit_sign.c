/*
 * unit_sign: delivery signatures, secrets and keys.
 *
 * The Standard Webhooks test vector is the published one; every other
 * expected signature was computed independently with the openssl CLI, e.g.
 *   printf '%s' '1614265330.{"test": 2432232314}' | openssl dgst -sha256 -hmac "$SECRET"
 *   printf 'msg_1.1614265330.a\000b' | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "secret.h"
#include "sign.h"
#include "unit.h"

#define HEX_SECRET "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define WH_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define WH_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define WH_BODY "{\"test\": 2432232314}"
#define WH_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_vector(void)
{
	unsigned char key[SIGN_KEY_MAX];
	char sig[SIGN_STD_LEN], av[SIGN_AV_LEN];
	int kl = sign_key_from_secret(WH_SECRET, key);
	CHECK_INT(kl, 24, "whsec_ key is the base64-decoded bytes");
	CHECK(sign_standard(key, (size_t)kl, WH_ID, 1614265330, WH_BODY, strlen(WH_BODY), sig) == 0,
	      "signs");
	CHECK_STR(sig, WH_SIG, "Standard Webhooks test vector");
	CHECK(sign_standard(key, (size_t)kl, WH_ID, 1614265331, WH_BODY, strlen(WH_BODY), sig) == 0 &&
	      strcmp(sig, WH_SIG) != 0, "another timestamp gives another signature");
	CHECK(sign_standard(key, (size_t)kl, "msg_other", 1614265330, WH_BODY, strlen(WH_BODY), sig) == 0 &&
	      strcmp(sig, WH_SIG) != 0, "another id gives another signature");
	CHECK(sign_agentvista(key, (size_t)kl, 1614265330, WH_BODY, strlen(WH_BODY), av) == 0, "AV signs");
	CHECK_STR(av, "t=1614265330,v1=e96203c6de850e7dc1fde7489ef6140b402d3a5a64fe250cd2eef9830fac1cef",
	          "X-AgentVista-Signature with a whsec_ key matches openssl");
}

static void test_raw_secret(void)
{
	unsigned char key[SIGN_KEY_MAX];
	char sig[SIGN_STD_LEN], av[SIGN_AV_LEN];
	int kl = sign_key_from_secret(HEX_SECRET, key);
	CHECK_INT(kl, 64, "a raw secret's key is its own 64 bytes");
	CHECK(memcmp(key, HEX_SECRET, 64) == 0, "  ... the string's bytes, not the hex decoded");
	CHECK(sign_standard(key, (size_t)kl, "msg_1", 1614265330, "{}", 2, sig) == 0, "signs raw");
	CHECK_STR(sig, "v1,ZZePDNe6t1TN4fZgJgNra5oLfrlL60yyUmfKbG8v5HM=", "standard signature, raw key");
	CHECK(sign_agentvista(key, (size_t)kl, 1614265330, WH_BODY, strlen(WH_BODY), av) == 0, "signs AV");
	CHECK_STR(av, "t=1614265330,v1=c9f57d6e1a42b0750fc227dfa66bc8cad4250ed836d236469b232584a07e7da9",
	          "X-AgentVista-Signature matches openssl dgst -hmac");
	CHECK(sign_agentvista(key, (size_t)kl, 1614265330, NULL, 0, av) == 0, "AV of an empty body");
	CHECK_STR(av, "t=1614265330,v1=a1e153f7a28eb8eac5927e14092cb74f53808ea9f6a6fc9a0e9afea5876594b8",
	          "  ... matches openssl");
	CHECK(sign_standard(key, (size_t)kl, "msg_1", 1614265330, "a\0b", 3, sig) == 0, "a body with a NUL");
	CHECK_STR(sig, "v1,hKeNq+MLHXQGS3FYCl/gUJGxTmJjDRjquFWvrnlvFDI=", "  ... signs all body_len bytes");
	CHECK(sign_standard(key, (size_t)kl, "msg_1", -5, "{}", 2, sig) == 0, "a negative timestamp");
	CHECK_STR(sig, "v1,EwILkdA2G190CJ/IqwPMMleUDr2Y+0qxG0AbzU/l8Bk=", "  ... matches openssl");
	CHECK(sign_agentvista(key, (size_t)kl, INT64_MIN, "{}", 2, av) == 0 && strlen(av) < SIGN_AV_LEN,
	      "the longest timestamp fits SIGN_AV_LEN");
}

/* The spec's promise: "whsec_" + base64(raw secret) verifies the same. */
static void test_whsec_of_raw(void)
{
	unsigned char k1[SIGN_KEY_MAX], k2[SIGN_KEY_MAX];
	char s1[SIGN_STD_LEN], s2[SIGN_STD_LEN];
	int l1 = sign_key_from_secret(HEX_SECRET, k1);
	int l2 = sign_key_from_secret("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5"
	                              "YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg==", k2);
	CHECK_INT(l2, 64, "whsec_ of the raw secret decodes to its 64 bytes");
	sign_standard(k1, (size_t)l1, "msg_1", 1, "{}", 2, s1);
	sign_standard(k2, (size_t)l2, "msg_1", 1, "{}", 2, s2);
	CHECK_STR(s2, s1, "whsec_ + base64(raw) signs like the raw secret");
}

static void test_bad_keys(void)
{
	unsigned char key[SIGN_KEY_MAX];
	static const char *const bad[] = {
		"", "whsec_", "whsec_abc", "whsec_!!!!", "whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", "whsec_A=AA", "whsec_A===", "whsec_====",
		"whsec_MfKQ-r8GKYqrTwjUPD8ILPZIo2LaLaSw", /* base64url is not the Standard Webhooks form */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[96];
		snprintf(name, sizeof(name), "secret '%s' refused", bad[i]);
		CHECK(sign_key_from_secret(bad[i], key) < 0, name);
	}
	CHECK(sign_key_from_secret(NULL, key) < 0, "NULL secret refused");
	CHECK_INT(sign_key_from_secret("whsec_AA==", key), 1, "two padding characters: 1 byte");
	CHECK_INT(sign_key_from_secret("whsec_AAA=", key), 2, "one padding character: 2 bytes");
	char raw[SIGN_KEY_MAX + 2];
	memset(raw, 'k', sizeof(raw) - 1);
	raw[SIGN_KEY_MAX] = '\0';
	CHECK_INT(sign_key_from_secret(raw, key), SIGN_KEY_MAX, "a raw secret of SIGN_KEY_MAX bytes");
	raw[SIGN_KEY_MAX] = 'k';
	raw[SIGN_KEY_MAX + 1] = '\0';
	CHECK(sign_key_from_secret(raw, key) < 0, "a longer raw secret refused");
}

/* Threads share the fetched MAC and each use their own context. */
static void *sign_many(void *arg)
{
	unsigned char key[SIGN_KEY_MAX];
	char sig[SIGN_STD_LEN];
	int kl = sign_key_from_secret(WH_SECRET, key);
	intptr_t bad = 0;
	for (int i = 0; i < 2000; i++)
		bad += sign_standard(key, (size_t)kl, WH_ID, 1614265330, WH_BODY, strlen(WH_BODY), sig) != 0 ||
		       strcmp(sig, WH_SIG) != 0;
	(void)arg;
	return (void *)bad;
}

static void test_threads(void)
{
	pthread_t t[4];
	intptr_t bad = 0;
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, sign_many, NULL);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad += (intptr_t)r;
	}
	CHECK_INT(bad, 0, "4 threads x 2000 signatures all match the vector");
}

static void test_secrets(void)
{
	char hex[SECRET_HEX_LEN], hex2[SECRET_HEX_LEN], wh[SECRET_WHSEC_LEN], api[SECRET_API_KEY_LEN];
	CHECK(secret_new_hex(hex) == 0 && secret_new_hex(hex2) == 0, "hex secrets");
	CHECK(strlen(hex) == 64 && strspn(hex, "0123456789abcdef") == 64, "64 lowercase hex");
	CHECK(strcmp(hex, hex2) != 0, "two secrets differ");
	CHECK(secret_new_whsec(wh) == 0 && strncmp(wh, "whsec_", 6) == 0 && strlen(wh) == 50,
	      "whsec_ + 44 base64 characters");
	unsigned char key[SIGN_KEY_MAX];
	CHECK_INT(sign_key_from_secret(wh, key), 32, "a whsec_ secret decodes to 32 bytes");
	CHECK_INT(sign_key_from_secret(hex, key), 64, "a hex secret is a 64-byte key");
	CHECK(secret_new_api_key(api) == 0 && strncmp(api, "hk_", 3) == 0 && strlen(api) == 46 &&
	      strcspn(api + 3, "+/=") == 43, "API key: hk_ + 43 base64url characters");
	CHECK(strspn(api + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43,
	      "  ... only the base64url alphabet");
	unsigned char h[32];
	char hx[65];
	secret_sha256("abc", 3, h);
	secret_to_hex(h, 32, hx);
	CHECK_STR(hx, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "SHA-256(abc)");
	secret_sha256("", 0, h);
	secret_to_hex(h, 32, hx);
	CHECK_STR(hx, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "SHA-256 of nothing");
	secret_to_hex((const unsigned char *)"\x00\xff", 2, hx);
	CHECK_STR(hx, "00ff", "hex of 00 ff");
}

int main(void)
{
	test_vector();
	test_raw_secret();
	test_whsec_of_raw();
	test_bad_keys();
	test_threads();
	test_secrets();
	return unit_done();
}
