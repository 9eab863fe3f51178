/* Request bodies: the depth pre-scan, the JSON parser, and every field
 * validator the routes apply (event types, strings, URLs). */
#include <jansson.h>

#include "api.h"
#include "fuzz.h"
#include "target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!api_json_depth_ok((const char *)data, size, 64))
		return 0;
	json_t *v = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(v)) {
		json_decref(v);
		return 0;
	}
	struct hk_err err;
	char *types = NULL;
	const char *s;
	json_t *f;
	if ((f = json_object_get(v, "event_types")) && api_event_types(f, &types, &err) == HK_OK)
		free(types);
	if ((f = json_object_get(v, "description")))
		api_string_field(f, "description", 256, &s, &err);
	if ((f = json_object_get(v, "url")) && json_is_string(f))
		target_validate(json_string_value(f), NULL, &err);
	if ((f = json_object_get(v, "event_type")) && json_is_string(f))
		api_valid_event_type(json_string_value(f));
	json_decref(v);
	return 0;
}
