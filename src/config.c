/*
 * config: table-driven flags with HOOKD_* environment fallbacks. See config.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timeutil.h"

enum kind { K_STR, K_INT, K_DURATION, K_SIZE, K_LISTEN, K_SCHEDULE, K_LOGLEVEL };

struct opt {
	const char *name;
	unsigned cmds;
	enum kind kind;
	size_t off;
	const char *def; /* default, parsed like a user value; NULL: none */
	const char *help;
};

#define ALL (CMD_SERVE | CMD_MIGRATE | CMD_ORG_CREATE | CMD_KEY_CREATE)
#define OFF(f) offsetof(struct config, f)

static const struct opt opts[] = {
	{ "db", ALL, K_STR, OFF(db), "hookd.db", "SQLite file path or postgres:// URL" },
	{ "log-level", ALL, K_LOGLEVEL, OFF(log_level), "info", "debug, info, warn or error" },
	{ "listen", CMD_SERVE, K_LISTEN, 0, "127.0.0.1:8080", "address and port of the API" },
	{ "allow-targets", CMD_SERVE, K_STR, OFF(allow_targets), NULL,
	  "CIDRs deliveries may reach despite the SSRF policy, comma-separated" },
	{ "ca-file", CMD_SERVE, K_STR, OFF(ca_file), NULL, "PEM bundle to verify receivers with" },
	{ "master-key-file", CMD_SERVE, K_STR, OFF(master_key_file), NULL,
	  "AES-256-GCM key(s) sealing endpoint secrets at rest, made 0600 if absent (default: <db>.key)" },
	{ "retry-schedule", CMD_SERVE, K_SCHEDULE, OFF(schedule), "5s,30s,2m,10m,30m,1h,3h,6h,12h",
	  "delays between attempts" },
	{ "breaker-threshold", CMD_SERVE, K_INT, OFF(breaker_threshold), "10",
	  "consecutive failures that pause an endpoint (0: never)" },
	{ "connect-timeout", CMD_SERVE, K_DURATION, OFF(connect_timeout_ms), "5s",
	  "connect timeout of an attempt" },
	{ "attempt-timeout", CMD_SERVE, K_DURATION, OFF(attempt_timeout_ms), "15s",
	  "whole-attempt timeout" },
	{ "retry-after-cap", CMD_SERVE, K_DURATION, OFF(retry_after_cap_ms), "1h",
	  "longest Retry-After honoured" },
	{ "grace", CMD_SERVE, K_DURATION, OFF(grace_ms), "10s",
	  "on SIGTERM, how long in-flight attempts may finish" },
	{ "lease-margin", CMD_SERVE, K_DURATION, OFF(lease_margin_ms), "30s",
	  "a claim's lease: connect + attempt timeout + this" },
	{ "idempotency-window", CMD_SERVE, K_DURATION, OFF(idempotency_window_ms), "24h",
	  "how long an idempotency key is remembered" },
	{ "conn-timeout", CMD_SERVE, K_DURATION, OFF(conn_timeout_ms), "30s",
	  "idle API connection timeout" },
	{ "max-body", CMD_SERVE, K_SIZE, OFF(max_body), "1MiB", "largest request body" },
	{ "http-threads", CMD_SERVE, K_INT, OFF(http_threads), "2", "API server threads" },
	{ "max-connections", CMD_SERVE, K_INT, OFF(max_connections), "4096",
	  "concurrent API connections" },
	{ "max-in-flight", CMD_SERVE, K_INT, OFF(max_in_flight), "10000",
	  "concurrent delivery attempts in all" },
	{ "max-in-flight-per-endpoint", CMD_SERVE, K_INT, OFF(max_in_flight_per_endpoint), "64",
	  "concurrent delivery attempts to one endpoint" },
	{ "max-connections-per-host", CMD_SERVE, K_INT, OFF(max_connections_per_host), "256",
	  "delivery connections to one host:port (0: no cap); more attempts queue" },
	{ "dns-ttl", CMD_SERVE, K_DURATION, OFF(dns_ttl_ms), "60s",
	  "how long a receiver's resolved address is reused (looked up again within twice this)" },
	{ "commit-batch", CMD_SERVE, K_INT, OFF(commit_batch), "2048",
	  "most events published in one group commit" },
	{ "name", CMD_ORG_CREATE, K_STR, OFF(name), NULL, "display name of the org (default: slug)" },
	{ "org", CMD_KEY_CREATE, K_STR, OFF(org), NULL, "slug of the key's org (required)" },
	{ "role", CMD_KEY_CREATE, K_STR, OFF(role), "admin", "admin or member" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int parse_listen(struct config *cfg, const char *v)
{
	const char *colon = strrchr(v, ':');
	if (!colon || colon == v || (size_t)(colon - v) >= sizeof(cfg->listen_host))
		return -1;
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '\0' || port < 0 || port > 65535)
		return -1;
	size_t hl = (size_t)(colon - v);
	/* [::1]:8080 → ::1 */
	if (v[0] == '[' && hl >= 2 && v[hl - 1] == ']') {
		memcpy(cfg->listen_host, v + 1, hl - 2);
		cfg->listen_host[hl - 2] = '\0';
	} else {
		memcpy(cfg->listen_host, v, hl);
		cfg->listen_host[hl] = '\0';
	}
	cfg->listen_port = (uint16_t)port;
	return 0;
}

static int parse_int(const char *v, int *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < 0 || n > 1000000000)
		return -1;
	*out = (int)n;
	return 0;
}

/* Parse v into the field of o. Returns 0 or -1 with a message in errbuf. */
static int set_value(struct config *cfg, const struct opt *o, const char *v, char *errbuf,
                     size_t cap)
{
	void *p = (char *)cfg + o->off;
	int rc = -1;
	switch (o->kind) {
	case K_STR: *(const char **)p = v; rc = 0; break;
	case K_INT: rc = parse_int(v, p); break;
	case K_DURATION: rc = tu_parse_duration_ms(v, p); break;
	case K_SIZE: rc = tu_parse_size(v, p); break;
	case K_LISTEN: rc = parse_listen(cfg, v); break;
	case K_SCHEDULE: return retry_schedule_parse(v, p, errbuf, cap);
	case K_LOGLEVEL:
		*(int *)p = log_level_parse(v);
		rc = *(int *)p < 0 ? -1 : 0;
		break;
	}
	if (rc != 0)
		snprintf(errbuf, cap, "invalid value for --%s", o->name);
	return rc;
}

/* HOOKD_ + the flag name in upper case with '-' as '_'. */
static const char *env_value(const char *name)
{
	char var[64] = "HOOKD_";
	size_t n = 6;
	for (; *name && n < sizeof(var) - 1; name++)
		var[n++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
	var[n] = '\0';
	return getenv(var);
}

void config_usage(enum config_cmd cmd, const char *usage, void *fp)
{
	FILE *f = fp;
	fprintf(f, "usage: %s\n\nflags (each also read from HOOKD_<FLAG>, e.g. HOOKD_DB):\n", usage);
	for (size_t i = 0; i < NOPTS; i++) {
		if (!(opts[i].cmds & (unsigned)cmd))
			continue;
		char left[48];
		snprintf(left, sizeof(left), "--%s", opts[i].name);
		fprintf(f, "  %-30s %s", left, opts[i].help);
		if (opts[i].def)
			fprintf(f, " (default %s)", opts[i].def);
		fputc('\n', f);
	}
	fprintf(f, "  %-30s %s\n", "--help", "show this help");
}

static int apply_defaults_and_env(struct config *cfg, enum config_cmd cmd, char *errbuf,
                                  size_t cap)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		if (!(o->cmds & (unsigned)cmd))
			continue;
		const char *v = env_value(o->name);
		if (v && set_value(cfg, o, v, errbuf, cap) != 0) {
			size_t used = strlen(errbuf);
			snprintf(errbuf + used, cap - used, " (from the environment)");
			return -1;
		}
		if (!v && o->def && set_value(cfg, o, o->def, errbuf, cap) != 0)
			return -1;
	}
	return 0;
}

int config_parse(struct config *cfg, enum config_cmd cmd, int argc, char **argv)
{
	memset(cfg, 0, sizeof(*cfg));
	char errbuf[256] = "";
	struct option lo[NOPTS + 2];
	size_t n = 0;
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].cmds & (unsigned)cmd)
			lo[n++] = (struct option){ opts[i].name, required_argument, NULL, (int)(i + 1000) };
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n] = (struct option){ 0, 0, 0, 0 };
	if (apply_defaults_and_env(cfg, cmd, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "hookd: %s\n", errbuf);
		return -1;
	}
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'h')
			return 1;
		if (c < 1000) {
			fprintf(stderr, "hookd: unknown or incomplete flag %s (see --help)\n",
			        argv[optind - 1]);
			return -1;
		}
		if (set_value(cfg, &opts[c - 1000], optarg, errbuf, sizeof(errbuf)) != 0) {
			fprintf(stderr, "hookd: %s\n", errbuf);
			return -1;
		}
	}
	cfg->argc = argc - optind;
	cfg->argv = argv + optind;
	return 0;
}
