/*
 * unit_target: endpoint URL validation: a table of URLs accepted and refused
 * (with the start of the message each refusal must give), the length limit,
 * the allow list, and random mutations of the table that must never fault.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssrf.h"
#include "target.h"
#include "unit.h"

#define OK NULL
#define HTTPS "url must use https"
#define CREDS "url must not contain credentials"
#define HOST "url must have a host"
#define FRAG "url must not contain a fragment"
#define CHARS "url must not contain spaces or control characters"
#define BAD "url is not a valid URL"
#define REFUSED "url targets a refused address"

static const struct {
	const char *url;
	const char *why; /* OK, or how the message starts */
} cases[] = {
	{ "https://example.com/hooks", OK },
	{ "https://example.com", OK },
	{ "HTTPS://Example.COM/x", OK },
	{ "HtTpS://example.com/", OK },
	{ "https://example.com:8443/a/b?c=d&e=f", OK },
	{ "https://example.com:65535/", OK },
	{ "https://example.com/p%20q?x=%23", OK },
	{ "https://8.8.8.8/x", OK },
	{ "https://8.8.8.8:443/?a=b", OK },
	{ "https://[2606:4700:4700::1111]/x", OK },
	{ "https://[::ffff:8.8.8.8]/", OK },
	{ "https://xn--bcher-kva.example/", OK },
	{ "https://sub.domain.example.co.uk./path", OK },
	{ "http://example.com/", HTTPS },
	{ "ftp://example.com/", HTTPS },
	{ "javascript:alert(1)", HTTPS },
	{ "https:example.com", HTTPS },
	{ "example.com/hooks", HTTPS },
	{ "//example.com/hooks", HTTPS },
	{ "", "url is required" },
	{ "https://", HOST },
	{ "https:///path", HOST },
	{ "https://./", HOST },
	{ "https://../x", HOST },
	{ "https://user:pw@example.com/", CREDS },
	{ "https://user@example.com/", CREDS },
	{ "https://@example.com/", CREDS },
	{ "https://:@example.com/", CREDS },
	{ "https://example.com\\@evil.example/", CREDS },
	{ "https://example.com/#frag", FRAG },
	{ "https://example.com/#", FRAG },
	{ "https://example.com/a?b=c#", FRAG },
	{ "https://exa mple.com/", CHARS },
	{ "https://example.com/\n", CHARS },
	{ "https://example.com/\t", CHARS },
	{ "https://example.com/\x7f", CHARS },
	{ " https://example.com/", CHARS },
	{ "https://example.com:99999/", BAD },
	{ "https://example.com:0/", "url must have a port" },
	{ "https://[::1/", BAD },
	{ "https://2001:db8::1/", BAD },
	{ "https://127.0.0.1/", REFUSED " (loopback)" },
	{ "https://127.1/", REFUSED " (loopback)" },
	{ "https://2130706433/", REFUSED " (loopback)" },
	{ "https://0x7f.0.0.1/", REFUSED " (loopback)" },
	{ "https://0x7f000001/", REFUSED " (loopback)" },
	{ "https://0177.0.0.1/", REFUSED " (loopback)" },
	{ "https://017700000001/", REFUSED " (loopback)" },
	{ "https://127.0.0.1./", REFUSED " (loopback)" },
	{ "https://%31%32%37.0.0.1/", REFUSED " (loopback)" },
	{ "https://[::1]/", REFUSED " (loopback)" },
	{ "https://[::ffff:127.0.0.1]/", REFUSED " (loopback)" },
	{ "https://[64:ff9b::7f00:1]/", REFUSED " (loopback)" },
	{ "https://10.0.0.1/", REFUSED " (private)" },
	{ "https://169.254.169.254/latest/meta-data", REFUSED " (link-local)" },
	{ "https://192.168.1.1:443/", REFUSED " (private)" },
	{ "https://[fe80::1]/", REFUSED " (link-local)" },
	{ "https://[fe80::1%25eth0]/", REFUSED " (link-local)" },
	{ "https://[2001:db8::1]/", REFUSED " (documentation)" },
	{ "https://0.0.0.0/", REFUSED " (unspecified)" },
	{ "https://0/", REFUSED " (unspecified)" },
	{ "https://100.64.0.1/", REFUSED " (carrier-grade NAT)" },
	{ "https://224.0.0.1/", REFUSED " (multicast)" },
	{ "https://255.255.255.255/", REFUSED " (broadcast)" },
};

static void test_table(void)
{
	char name[200];
	struct hk_err err;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hk_err_clear(&err);
		hk_status st = target_validate(cases[i].url, NULL, &err);
		const char *why = cases[i].why;
		snprintf(name, sizeof(name), "%s %s", cases[i].url, why ? "refused" : "accepted");
		if (!why) {
			CHECK_INT(st, HK_OK, name);
			continue;
		}
		char got[400];
		snprintf(got, sizeof(got), "(got %d \"%s\": \"%s\")", st, err.code, err.msg);
		unit_report(st == HK_EINVALID && strcmp(err.code, "invalid_url") == 0 &&
		            strncmp(err.msg, why, strlen(why)) == 0, name, got);
	}
}

static void test_length(void)
{
	struct hk_err err;
	char long_url[2100] = "https://example.com/";
	memset(long_url + 20, 'a', 2028);
	long_url[2048] = '\0';
	CHECK(target_validate(long_url, NULL, &err) == HK_OK, "2048 characters accepted");
	long_url[2048] = 'a';
	long_url[2049] = '\0';
	CHECK(target_validate(long_url, NULL, &err) != HK_OK &&
	      strcmp(err.msg, "url must be at most 2048 characters") == 0, "2049 characters refused");
	CHECK(target_validate(NULL, NULL, &err) == HK_EINVALID && strcmp(err.msg, "url is required") == 0,
	      "NULL refused");
	CHECK(target_validate("http://x/", NULL, NULL) == HK_EINVALID, "a NULL err is fine");
}

static void test_allow(void)
{
	struct hk_err err;
	struct ssrf_allow *a;
	char e[64];
	ssrf_allow_parse("127.0.0.0/8,fd00::/8", &a, e, sizeof(e));
	CHECK(target_validate("https://127.0.0.1:8443/x", a, &err) == HK_OK, "allowed range accepted");
	CHECK(target_validate("https://127.1:8443/x", a, &err) == HK_OK, "  ... in any IPv4 form");
	CHECK(target_validate("https://[::ffff:127.0.0.1]/", a, &err) == HK_OK, "  ... and mapped");
	CHECK(target_validate("https://[fd00::5]/", a, &err) == HK_OK, "allowed IPv6 range accepted");
	CHECK(target_validate("https://10.0.0.1/x", a, &err) != HK_OK, "other private range still refused");
	CHECK(target_validate("http://127.0.0.1/x", a, &err) != HK_OK, "the allow list does not allow http");
	ssrf_allow_free(a);
}

/* Mutations of the table's URLs: flipped, inserted and cut bytes. */
static void test_fuzz(void)
{
	static const char bytes[] = "/:@[]%#?.0x7f1:::\\ \t\x01\x80\xff";
	unsigned seed = 4242;
	char buf[128];
	struct hk_err err;
	int bad = 0;
	for (int i = 0; i < 30000; i++) {
		seed = seed * 1103515245 + 12345;
		snprintf(buf, sizeof(buf), "%s", cases[(seed >> 16) % (sizeof(cases) / sizeof(cases[0]))].url);
		size_t n = strlen(buf);
		for (int k = 0; k < 3 && n > 0; k++) {
			seed = seed * 1103515245 + 12345;
			buf[(seed >> 8) % n] = bytes[(seed >> 20) % (sizeof(bytes) - 1)];
		}
		seed = seed * 1103515245 + 12345;
		if (n && (seed >> 16) % 4 == 0)
			buf[(seed >> 8) % n] = '\0';
		hk_status st = target_validate(buf, NULL, &err);
		bad += st != HK_OK && (st != HK_EINVALID || strncmp(err.msg, "url ", 4) != 0);
	}
	CHECK_INT(bad, 0, "30000 mutated URLs: no fault, every refusal names url");
}

int main(void)
{
	test_table();
	test_length();
	test_allow();
	test_fuzz();
	return unit_done();
}
