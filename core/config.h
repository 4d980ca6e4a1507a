/*
 * config.h - the configuration file, the embedded default, and the options
 * a configured check hands to its plugin.
 *
 * Every error is one line "FILE: KEY: what is wrong" written into the
 * caller's buffer, so that startup can stop with exactly that line.
 */
#ifndef HEALTHD_CONFIG_H
#define HEALTHD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define CONFIG_DEFAULT_LISTEN "127.0.0.1:8080"
#define CONFIG_DEFAULT_PREFIX "/health"
#define CONFIG_DEFAULT_METRICS "/metrics"
#define CONFIG_DEFAULT_WORKERS 8
#define CONFIG_DEFAULT_TIMEOUT_MS 2000
/* A group whose timeout_ms runs out answers a check's last result up to this
 * old (README "Groups"): probes up to once a minute get the same verdicts. */
#define CONFIG_DEFAULT_MAX_RESULT_AGE_MS 60000
/* A background check runs at most this often (interval_ms): a floor that keeps
 * a typo such as 10 from turning a database check into a load test. */
#define CONFIG_MIN_INTERVAL_MS 100

struct config_option {
	char *key;
	char *value;
	bool used; /* read by the plugin; unread keys are refused as unknown */
};

/* The ABI's opaque struct healthd_options is defined by the host, here. */
struct healthd_options {
	struct config_option *v;
	size_t n;
	char err[256]; /* first bad value met by option_int / option_bool */
};

struct config_check {
	char *origin; /* "FILE: checks[2]", for messages */
	char *name;
	char *plugin;
	bool defaults;
	int timeout_ms;
	int cache_ms;
	int interval_ms;              /* 0: run on request; else in the background */
	int failures_before_critical; /* 0 or 1: the first failed run counts */
	int successes_before_passing; /* 0 or 1: the first passing run counts */
	char **depends_on;            /* names of checks it depends on (suppressed_by) */
	size_t ndepends_on;
	struct healthd_options options;
};

/*
 * A group: P/<name> answers like P/ over these checks. The names are checked
 * against the registry once plugins have registered theirs
 * (http_check_groups), not here.
 */
struct config_group {
	char *name;
	char **checks;
	size_t nchecks;
	char *selection;   /* "a,b": the checks as a ?checks= value, for registry_select */
	int timeout_ms;    /* budget for the whole answer; 0: none */
	int max_result_age_ms; /* past the budget, a last result up to this old; 0: none */
};

/* "history": the store's file size and flap detection (README "History,
 * flapping and dependencies"). */
struct config_history {
	int max_file_bytes;         /* state_dir's history.log rotates past this */
	double flap_low, flap_high; /* percent state change: stop below, start at */
};

/* Who answers, for health+json (serviceId, version, releaseId, description);
 * each NULL unless configured. */
struct config_service {
	char *id;
	char *version;
	char *release_id;
	char *description;
};

enum config_secret { SECRET_UNSET, SECRET_OFF, SECRET_SET };

/* tls.client_auth_type: Go's crypto/tls ClientAuthType, as the Prometheus
 * exporter-toolkit names them (README "HTTPS"). */
enum config_client_auth {
	CLIENT_AUTH_NONE,           /* NoClientCert: none asked for */
	CLIENT_AUTH_REQUEST,        /* RequestClientCert: asked for, not verified */
	CLIENT_AUTH_REQUIRE_ANY,    /* RequireAnyClientCert: required, not verified */
	CLIENT_AUTH_VERIFY_IF_GIVEN, /* VerifyClientCertIfGiven: verified when sent */
	CLIENT_AUTH_REQUIRE_VERIFY, /* RequireAndVerifyClientCert: required and verified */
};

/* "tls": the exporter-toolkit's tls_server_config; paths resolved against
 * the config file's directory. Its files are read by tls.c, not here. */
struct config_tls {
	bool on;
	char *cert_file;
	char *key_file;
	char *client_ca_file;          /* NULL: none */
	enum config_client_auth client_auth;
	int min_version, max_version;  /* 10 (TLS 1.0) .. 13 (TLS 1.3) */
};

/* Limits that keep a small server up under abuse (see README). */
struct config_limits {
	int max_connections;   /* open connections at once */
	int idle_timeout_s;    /* close a connection idle this long */
	int max_request_bytes; /* request line + headers, per connection */
	int max_names;         /* names read from ?checks= */
	int max_connections_per_ip; /* 0: no per-address limit */
	int max_body_bytes;    /* a request body is read and dropped up to this */
	int header_timeout_s;  /* request header complete within this of the connection's
	                        * start or its previous response (total, not idleness) */
	int body_timeout_s;    /* a body that is read: complete within this of the header */
	int send_timeout_s;    /* a response: taken by the client within this */
};

/* How plugin code outside the server process is supervised (see executor.h). */
struct config_isolation {
	int kill_after_ms;  /* a run still in plugin code this long past its deadline
	                     * retires its executor */
	int max_rss_mb;     /* an executor above this is replaced after its runs */
	int restart_min_ms; /* backoff after a crash: from this, doubling ... */
	int restart_max_ms; /* ... up to this */
	int crash_reset_ms; /* this long without a crash: from restart_min_ms again */
	int max_threads;    /* run threads per executor, started on demand */
	int max_tasks;      /* processes and threads per executor, sandbox's included */
	int load_timeout_ms; /* load() and instantiate() of a fresh executor, at most */
};

/* The executor sandbox's layers (sandbox.h), as isolation.require and the
 * per-plugin opt-outs in isolation.plugins name them. */
enum config_sandbox_layer {
	SANDBOX_NAMESPACES    = 1u << 0, /* user + mount namespaces, secrets overmounted */
	SANDBOX_PID_NAMESPACE = 1u << 1, /* a PID namespace and its own /proc */
	SANDBOX_SECCOMP       = 1u << 2, /* seccomp-bpf filter, no_new_privs */
	SANDBOX_LANDLOCK      = 1u << 3, /* landlock: no credentials, config, secret */
	SANDBOX_TASKS         = 1u << 4, /* max_tasks, counted in the user namespace */
	SANDBOX_ALL           = (1u << 5) - 1,
};

/* "isolation": {"plugins": {"exec": {"pid_namespace": false}}}: layers one
 * plugin (by its "plugin" name) runs without. */
struct config_sandbox_off {
	char *plugin;
	unsigned layers;   /* enum config_sandbox_layer bits turned off */
};

struct config {
	char *path;            /* NULL: the embedded default */
	char **listen;         /* "ADDR:PORT" strings, validated */
	size_t nlisten;
	char *url_prefix;      /* normalised: starts with '/', no trailing '/'; "" for "/" */
	enum config_secret secret_mode;
	char *secret;
	char *plugin_dir;      /* NULL: the compiled-in default */
	int workers;
	char *checks_dir;
	char *metrics_path;    /* NULL: /metrics turned off */
	bool metrics_auth;
	int http_threads;
	struct config_limits limits;
	struct config_isolation isolation;
	char **in_process;     /* plugin names loaded into the server itself */
	size_t nin_process;
	unsigned sandbox_require;  /* layers whose absence is fatal (isolation.require) */
	struct config_sandbox_off *sandbox_off;
	size_t nsandbox_off;
	char *secret_file;     /* url_secret_file as read, for the sandbox to hide */
	bool secret_pending;   /* url_secret_file not read yet: config_read_secret() */
	struct config_check *checks;
	size_t nchecks;
	struct config_group *groups;
	size_t ngroups;
	char *state_dir;       /* NULL: the history is kept in memory only */
	struct config_history history;
	bool status_public;    /* P/status shows states (not messages) without the secret */
	struct config_service service;
	struct config_tls tls;
};

/* The embedded default: 127.0.0.1:8080, /health, no checks, secret unset. */
int config_init(struct config *c);
/* Reads path over the defaults in c. Returns 0, or -1 with one line in err. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/* Reads url_secret_file into secret, unless something overrode it since
 * config_load() (clear secret_pending first: HEALTH_URL_SECRET,
 * --no-url-secret). Returns 0, or -1 with one line naming file and key. */
int config_read_secret(struct config *c, char *err, size_t errlen);
/* The same for a file's len bytes already in memory; path names it in messages
 * and anchors relative paths. */
int config_load_text(struct config *c, const char *path, const char *text, size_t len,
                     char *err, size_t errlen);
void config_free(struct config *c);

/* Whether the plugin named `name` (or a file whose stem is `name`) runs in the
 * server process rather than in an executor. */
bool config_in_process(const struct config *c, const char *name, size_t len);

/* The layers the plugin named name[0..len) runs without. */
unsigned config_sandbox_off(const struct config *c, const char *name, size_t len);
/* "namespaces", "pid_namespace", "seccomp", "landlock", "tasks": the bit, or 0. */
unsigned config_sandbox_layer(const char *name);
/* The i-th layer's name and bit, from 0 until it returns NULL. */
const char *config_sandbox_layer_name(size_t i, unsigned *bit);

/*
 * Refuses a depends_on that names a check known(arg, name) does not know, or
 * that closes a cycle. Call once every check is registered (plugins register
 * their own). Returns 0, or -1 with one line "FILE: checks[1].depends_on:
 * cycle orders -> gateway -> orders" in err.
 */
int config_check_depends(const struct config *c, bool (*known)(const void *arg, const char *name),
                         const void *arg, char *err, size_t errlen);

/* "NoClientCert", ...: client_auth_type's name. */
const char *config_client_auth_name(enum config_client_auth a);

/* The group named name[0..len), or NULL. */
const struct config_group *config_group(const struct config *c, const char *name, size_t len);

/* Shared by the file and the command line. */
int config_set_listen(struct config *c, const char *const *addrs, size_t n, const char *where,
                      char *err, size_t errlen);
int config_set_prefix(struct config *c, const char *prefix, const char *where, char *err,
                      size_t errlen);

/* "ADDR:PORT", "[V6]:PORT" or "*:PORT" to a socket address. Returns 0 or -1. */
int config_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
                      size_t errlen);

#endif
