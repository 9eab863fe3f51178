/* Endpoint URL validation, with and without an allow list. */
#include "fuzz.h"
#include "ssrf.h"
#include "target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ssrf_allow *allow;
	char e[128];
	if (!allow)
		ssrf_allow_parse("127.0.0.0/8,::1/128", &allow, e, sizeof(e));
	char *s = fuzz_string(data, size);
	if (!s)
		return 0;
	struct hk_err err;
	target_validate(s, NULL, &err);
	target_validate(s, allow, &err);
	const char *why;
	ssrf_check_literal(s, allow, &why);
	free(s);
	return 0;
}
