/*
 * config: the command line of every subcommand, from flags and HOOKD_*
 * environment variables.
 *
 * One table describes every flag: its name, which subcommands take it, its
 * kind (string, integer, duration, size), its default and its help line. The
 * environment variable is derived from the name (--retry-schedule reads
 * HOOKD_RETRY_SCHEDULE); a flag on the command line beats the environment.
 * --help on any subcommand prints that subcommand's flags from the table, so
 * the help can never drift from what is parsed.
 */
#ifndef HK_CONFIG_H
#define HK_CONFIG_H

#include <stdint.h>

#include "retry.h"

enum config_cmd {
	CMD_SERVE = 1 << 0,
	CMD_MIGRATE = 1 << 1,
	CMD_ORG_CREATE = 1 << 2,
	CMD_KEY_CREATE = 1 << 3,
};

struct config {
	/* every subcommand */
	const char *db;
	int log_level;
	/* serve */
	char listen_host[64];
	uint16_t listen_port;
	const char *allow_targets;
	const char *ca_file;
	const char *master_key_file;
	struct retry_schedule schedule;
	int breaker_threshold;
	int64_t connect_timeout_ms;
	int64_t attempt_timeout_ms;
	int64_t retry_after_cap_ms;
	int64_t grace_ms;
	int64_t lease_margin_ms;
	int64_t dns_ttl_ms;
	int64_t idempotency_window_ms;
	int64_t conn_timeout_ms;
	uint64_t max_body;
	int http_threads;
	int max_connections;
	int max_in_flight;
	int max_in_flight_per_endpoint;
	int max_connections_per_host;
	int commit_batch;
	/* org create / key create */
	const char *name;
	const char *org;
	const char *role;
	/* positional arguments left after the flags (e.g. the org slug) */
	int argc;
	char **argv;
};

/* Parse the flags of cmd from argv (argv[0] is the subcommand's name) and the
 * environment into *cfg (OUT), after filling defaults. Returns 0 to go on,
 * 1 when --help was printed (exit 0), -1 after printing an error to stderr
 * (exit 2). Strings in cfg point into argv or the environment. */
int config_parse(struct config *cfg, enum config_cmd cmd, int argc, char **argv);

/* Print the help of cmd (its usage line and its flags) to f. */
void config_usage(enum config_cmd cmd, const char *usage, void *f);

#endif
