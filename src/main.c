/*
 * main: the hookd command line. One binary, subcommands:
 *     hookd serve | migrate | org create SLUG | key create --org SLUG
 *
 * serve wires the modules together and owns start-up and shutdown order:
 * store → dispatcher → publisher → HTTP server, and on SIGTERM/SIGINT the
 * reverse, so nothing accepted is dropped on the way out: the server stops
 * taking connections, the publisher commits and answers what is queued
 * (and refuses later publishes with 503, which connections opened before
 * the signal can still send), the dispatcher lets in-flight attempts
 * finish within the grace period and records them, then the server closes.
 */
#include <ctype.h>
#include <fcntl.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api.h"
#include "config.h"
#include "dispatch.h"
#include "http_server.h"
#include "log.h"
#include "publish.h"
#include "seal.h"
#include "secret.h"
#include "ssrf.h"
#include "store.h"
#include "timeutil.h"

static const char *const usage_main =
	"hookd: self-hosted webhook delivery\n\n"
	"usage: hookd <command> [flags]\n\n"
	"commands:\n"
	"  serve                      run the API and the delivery engine\n"
	"  migrate                    bring the database schema up to date\n"
	"  org create SLUG            create an organization\n"
	"  key create --org SLUG      create an API key (printed once, on stdout)\n\n"
	"Run 'hookd <command> --help' for the flags of a command.\n";

/* Parse flags; returns -1 to go on, else the exit status. */
static int parse(struct config *cfg, enum config_cmd cmd, const char *usage, int argc, char **argv)
{
	int rc = config_parse(cfg, cmd, argc, argv);
	if (rc == 1) {
		config_usage(cmd, usage, stdout);
		return 0;
	}
	if (rc < 0)
		return 2;
	log_set_level((enum log_level)cfg->log_level);
	return -1;
}

static int open_store_sealed(const struct config *cfg, const struct seal *seal, struct store **s)
{
	struct hk_err err;
	struct store_options opt = { .busy_timeout_ms = 10000, .seal = seal };
	if (store_open(cfg->db, &opt, s, &err) != HK_OK) {
		fprintf(stderr, "hookd: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* The commands that never read a signing secret open the store unsealed. */
static int open_store(const struct config *cfg, struct store **s)
{
	return open_store_sealed(cfg, NULL, s);
}

/* Load (or create) the master key that seals secrets at rest. */
static int load_seal(const struct config *cfg, struct seal *seal)
{
	char path[4096], errbuf[300];
	if (cfg->master_key_file)
		snprintf(path, sizeof(path), "%s", cfg->master_key_file);
	else if (strncmp(cfg->db, "postgres", 8) == 0)
		snprintf(path, sizeof(path), "hookd.key");
	else
		snprintf(path, sizeof(path), "%s.key", cfg->db);
	if (seal_load(path, seal, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "hookd: %s\n", errbuf);
		return -1;
	}
	return 0;
}

/* A new API key: printed once by the caller, only its hash is kept. */
static int new_key(char key[SECRET_API_KEY_LEN], unsigned char hash[32])
{
	if (secret_new_api_key(key) != 0)
		return -1;
	secret_sha256(key, strlen(key), hash);
	return 0;
}

static int cmd_migrate(int argc, char **argv)
{
	struct config cfg;
	struct store *s;
	int rc = parse(&cfg, CMD_MIGRATE, "hookd migrate [--db PATH|URL]", argc, argv);
	if (rc >= 0)
		return rc;
	if (open_store(&cfg, &s) != 0)
		return 1;
	int version = 0;
	struct hk_err err;
	rc = store_schema_version(s, &version, &err) == HK_OK ? 0 : 1;
	if (rc == 0)
		printf("schema version %d (%s)\n", version, store_backend(s));
	store_close(s);
	return rc;
}

static int valid_slug(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= STORE_SLUG_MAX || !isalnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	return 1;
}

static int cmd_org_create(int argc, char **argv)
{
	struct config cfg;
	struct store *s;
	int rc = parse(&cfg, CMD_ORG_CREATE, "hookd org create SLUG [--name NAME] [--db PATH|URL]",
	               argc, argv);
	if (rc >= 0)
		return rc;
	if (cfg.argc != 1 || !valid_slug(cfg.argv[0])) {
		fprintf(stderr, "hookd: org create takes one SLUG: 1-63 of a-z 0-9 -, starting with a letter or digit\n");
		return 2;
	}
	if (open_store(&cfg, &s) != 0)
		return 1;
	struct hk_err err;
	int64_t id;
	const char *slug = cfg.argv[0];
	rc = store_org_create(s, slug, cfg.name ? cfg.name : slug, tu_now_ms(), &id, &err) == HK_OK ? 0 : 1;
	if (rc == 0)
		printf("created org %s\n", slug);
	else
		fprintf(stderr, "hookd: %s\n", err.msg);
	store_close(s);
	return rc;
}

static int cmd_key_create(int argc, char **argv)
{
	struct config cfg;
	struct store *s;
	int rc = parse(&cfg, CMD_KEY_CREATE, "hookd key create --org SLUG [--role admin|member] [--db PATH|URL]",
	               argc, argv);
	if (rc >= 0)
		return rc;
	enum store_role role = STORE_ROLE_ADMIN;
	if (strcmp(cfg.role, "member") == 0)
		role = STORE_ROLE_MEMBER;
	else if (strcmp(cfg.role, "admin") != 0) {
		fprintf(stderr, "hookd: --role must be admin or member\n");
		return 2;
	}
	if (!cfg.org || cfg.argc != 0) {
		fprintf(stderr, "hookd: key create needs --org SLUG and no other argument\n");
		return 2;
	}
	if (open_store(&cfg, &s) != 0)
		return 1;
	struct hk_err err;
	struct store_org org;
	char key[SECRET_API_KEY_LEN];
	unsigned char hash[32];
	hk_status st = store_org_get(s, cfg.org, &org, &err);
	if (st == HK_OK && new_key(key, hash) != 0)
		st = hk_fail(&err, HK_EINTERNAL, NULL, "no randomness available");
	if (st == HK_OK)
		st = store_key_create(s, org.id, hash, role, tu_now_ms(), &err);
	if (st == HK_OK)
		printf("%s\n", key);
	else
		fprintf(stderr, "hookd: %s\n", err.msg);
	store_close(s);
	return st == HK_OK ? 0 : 1;
}

/* On an empty store, create org "default" and print its admin key once. */
static int bootstrap(struct store *s)
{
	char key[SECRET_API_KEY_LEN];
	unsigned char hash[32];
	struct hk_err err;
	bool created;
	if (new_key(key, hash) != 0 || store_bootstrap(s, hash, tu_now_ms(), &created, &err) != HK_OK) {
		fprintf(stderr, "hookd: cannot bootstrap the store\n");
		return -1;
	}
	if (created) {
		printf("default org admin key: %s\n", key);
		fflush(stdout);
		log_info("created org default with one admin key (printed on stdout)", NULL);
	}
	return 0;
}

struct server {
	struct config cfg;
	struct seal seal;
	struct ssrf_allow *allow;
	struct store *store;
	struct dispatch *dispatch;
	struct publisher *publisher;
	struct router *router;
	struct http_server *http;
	struct app app;
	struct dispatch_config dcfg;
};

static int server_start(struct server *sv)
{
	struct hk_err err;
	char errbuf[256];
	const struct config *cfg = &sv->cfg;
	if (ssrf_allow_parse(cfg->allow_targets, &sv->allow, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "hookd: --allow-targets: %s\n", errbuf);
		return 2;
	}
	if (load_seal(cfg, &sv->seal) != 0 || open_store_sealed(cfg, &sv->seal, &sv->store) != 0 ||
	    bootstrap(sv->store) != 0)
		return 1;
	/* Leases no live process holds (the store knows which) are due now. */
	if (store_release_leases(sv->store, tu_now_ms(), &err) != HK_OK)
		return 1;
	sv->dcfg = (struct dispatch_config){
		.schedule = cfg->schedule, .breaker_threshold = cfg->breaker_threshold,
		.connect_timeout_ms = cfg->connect_timeout_ms, .attempt_timeout_ms = cfg->attempt_timeout_ms,
		.retry_after_cap_ms = cfg->retry_after_cap_ms, .grace_ms = cfg->grace_ms,
		.lease_margin_ms = cfg->lease_margin_ms, .dns_ttl_ms = cfg->dns_ttl_ms,
		.max_in_flight = (unsigned)cfg->max_in_flight,
		.max_in_flight_per_endpoint = (unsigned)cfg->max_in_flight_per_endpoint,
		.max_connections_per_host = cfg->max_connections_per_host,
		.response_keep = 4096, .ca_file = cfg->ca_file, .allow = sv->allow,
		.user_agent = "hookd/" HOOKD_VERSION,
	};
	if (!(sv->dispatch = dispatch_start(sv->store, &sv->dcfg, &err)) ||
	    !(sv->publisher = publisher_start(sv->store, (unsigned)cfg->commit_batch, dispatch_wake_cb,
	                                      sv->dispatch, &err))) {
		fprintf(stderr, "hookd: %s\n", err.msg);
		return 1;
	}
	/* Other nodes on the same database wake our dispatcher, and tell it of
	 * the endpoints they pause (PostgreSQL). */
	struct store_listener on = { .wake = dispatch_wake_cb, .paused = dispatch_paused_cb,
	                             .arg = sv->dispatch };
	if (store_listen(sv->store, &on, &err) != HK_OK) {
		fprintf(stderr, "hookd: %s\n", err.msg);
		return 1;
	}
	sv->app = (struct app){ .store = sv->store, .publisher = sv->publisher,
	                        .dispatch = sv->dispatch, .cfg = cfg, .allow = sv->allow };
	if (!(sv->router = router_new()) || api_routes(sv->router) != 0) {
		fprintf(stderr, "hookd: out of memory\n");
		return 1;
	}
	struct http_config hc = {
		.host = cfg->listen_host, .port = cfg->listen_port,
		.threads = (unsigned)(cfg->http_threads > 0 ? cfg->http_threads : 1),
		.max_body = cfg->max_body, .conn_limit = (unsigned)cfg->max_connections,
		.conn_timeout_s = (unsigned)((cfg->conn_timeout_ms + 999) / 1000),
		.conn_memory_limit = 64 * 1024,
	};
	if (!(sv->http = http_server_start(&hc, sv->router, &sv->app, &err))) {
		fprintf(stderr, "hookd: %s\n", err.msg);
		return 1;
	}
	log_info("listening", "addr=%s port=%u db_backend=%s", cfg->listen_host,
	         http_server_port(sv->http), store_backend(sv->store));
	return 0;
}

/* The reverse of server_start; safe on a partly started server. */
static void server_stop(struct server *sv)
{
	if (sv->http)
		http_server_quiesce(sv->http);
	publisher_stop(sv->publisher);
	if (sv->store)
		store_unlisten(sv->store); /* before the dispatcher it wakes is freed */
	if (sv->dispatch)
		dispatch_stop(sv->dispatch);
	if (sv->http)
		http_server_stop(sv->http);
	/* Freed only now: until the server stopped, a request on a connection
	 * opened before the signal could still reach them (and is refused). */
	publisher_free(sv->publisher);
	dispatch_free(sv->dispatch);
	router_free(sv->router);
	if (sv->store)
		store_close(sv->store);
	OPENSSL_cleanse(&sv->seal, sizeof(sv->seal));
	ssrf_allow_free(sv->allow);
}

/* Each attempt in flight can hold a socket (over HTTP/1.1, one each), and
 * so can each API connection: up to --max-in-flight plus --max-connections,
 * 14,096 by default. The soft limit on open files is often 1,024 (systemd's
 * default), past which connects fail with EMFILE, so it is raised to the
 * hard limit (as Go's runtime does for every Go program); a warning if even
 * that is short. */
static void raise_open_files(const struct config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	rlim_t need = (rlim_t)cfg->max_in_flight + (rlim_t)cfg->max_connections + 64;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		log_warn("open files limit is low", "limit=%llu wanted=%llu", (unsigned long long)rl.rlim_cur,
		         (unsigned long long)need);
}

static int cmd_serve(int argc, char **argv)
{
	static struct server sv;
	int rc = parse(&sv.cfg, CMD_SERVE, "hookd serve [flags]", argc, argv);
	if (rc >= 0)
		return rc;
	/* No glibc fastbins, for a hookd built without tcmalloc (see
	 * meson.build; tcmalloc ignores this). libcurl 7.88 allocates a 16 KiB
	 * upload buffer for every transfer and frees it when the transfer is
	 * done; glibc serves each such large request only after merging every
	 * block waiting in the fastbins. Small blocks still come from the
	 * per-thread tcache. Drains went about 6% faster (bench/JOURNAL.md);
	 * ingest and RSS did not move. */
	mallopt(M_MXFAST, 0);
	raise_open_files(&sv.cfg);
	/* Block the stop signals in every thread (threads inherit the mask) and
	 * take them synchronously here; SIGPIPE is never wanted. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = server_start(&sv);
	if (rc == 0) {
		int sig = 0;
		sigwait(&set, &sig);
		log_info("stopping", "signal=%s grace_ms=%lld", sig == SIGTERM ? "TERM" : "INT",
		         (long long)sv.cfg.grace_ms);
	}
	server_stop(&sv);
	if (rc == 0)
		log_info("stopped", NULL);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_main, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--version") == 0) {
		printf("hookd %s\n", HOOKD_VERSION);
		return 0;
	}
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1);
	if (argc >= 3 && strcmp(cmd, "org") == 0 && strcmp(argv[2], "create") == 0)
		return cmd_org_create(argc - 2, argv + 2);
	if (argc >= 3 && strcmp(cmd, "key") == 0 && strcmp(argv[2], "create") == 0)
		return cmd_key_create(argc - 2, argv + 2);
	fprintf(stderr, "hookd: unknown command '%s'\n\n%s", cmd, usage_main);
	return 2;
}
