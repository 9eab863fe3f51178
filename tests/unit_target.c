/*
 * unit_target: endpoint URL validation.
 */
#include <stdio.h>
#include <string.h>

#include "ssrf.h"
#include "target.h"
#include "unit.h"

static const struct {
	const char *url;
	int ok;
} cases[] = {
	{ "https://example.com/hooks", 1 },
	{ "https://example.com", 1 },
	{ "HTTPS://Example.COM/x", 1 },
	{ "https://example.com:8443/a/b?c=d&e=f", 1 },
	{ "https://8.8.8.8/x", 1 },
	{ "https://[2606:4700:4700::1111]/x", 1 },
	{ "https://xn--bcher-kva.example/", 1 },
	{ "http://example.com/", 0 },
	{ "ftp://example.com/", 0 },
	{ "example.com/hooks", 0 },
	{ "", 0 },
	{ "https://", 0 },
	{ "https:///path", 0 },
	{ "https://user:pw@example.com/", 0 },
	{ "https://user@example.com/", 0 },
	{ "https://example.com/#frag", 0 },
	{ "https://exa mple.com/", 0 },
	{ "https://example.com/\n", 0 },
	{ "https://127.0.0.1/", 0 },
	{ "https://127.1/", 0 },
	{ "https://2130706433/", 0 },
	{ "https://0x7f.0.0.1/", 0 },
	{ "https://0177.0.0.1/", 0 },
	{ "https://[::1]/", 0 },
	{ "https://[::ffff:127.0.0.1]/", 0 },
	{ "https://10.0.0.1/", 0 },
	{ "https://169.254.169.254/latest/meta-data", 0 },
	{ "https://192.168.1.1:443/", 0 },
	{ "https://[fe80::1]/", 0 },
	{ "https://0.0.0.0/", 0 },
	{ "https://example.com:99999/", 0 },
};

int main(void)
{
	char name[160];
	struct hk_err err;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hk_status st = target_validate(cases[i].url, NULL, &err);
		snprintf(name, sizeof(name), "%s %s", cases[i].url, cases[i].ok ? "accepted" : "refused");
		CHECK((st == HK_OK) == cases[i].ok, name);
		if (st != HK_OK)
			CHECK(strcmp(err.code, "invalid_url") == 0 && strstr(err.msg, "url") != NULL,
			      "  the error names the url field");
	}
	char long_url[2100] = "https://example.com/";
	memset(long_url + 20, 'a', 2028);
	long_url[2048] = '\0';
	CHECK(target_validate(long_url, NULL, &err) == HK_OK, "2048 characters accepted");
	long_url[2048] = 'a';
	long_url[2049] = '\0';
	CHECK(target_validate(long_url, NULL, &err) != HK_OK, "2049 characters refused");
	struct ssrf_allow *a;
	char e[64];
	ssrf_allow_parse("127.0.0.0/8", &a, e, sizeof(e));
	CHECK(target_validate("https://127.0.0.1:8443/x", a, &err) == HK_OK, "allowed range accepted");
	CHECK(target_validate("https://10.0.0.1/x", a, &err) != HK_OK, "other private range still refused");
	ssrf_allow_free(a);
	return unit_done();
}
