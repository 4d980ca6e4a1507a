/*
 * http - checks that an HTTP(S) endpoint answers with the expected status.
 *
 * Configured instances only (libcurl):
 *
 *     {"name": "api", "plugin": "http", "url": "https://127.0.0.1:9000/status",
 *      "method": "GET", "expect_status": 200, "header": {"X-Probe": "healthd"},
 *      "tls_verify": true, "ca_file": "/etc/ssl/certs/internal.pem",
 *      "max_redirects": 5, "proxy": ""}
 *
 * url:           required; http:// or https:// only, also for redirects
 * method:        GET, HEAD, POST, PUT, DELETE, PATCH or OPTIONS, any case (default
 *                GET); no request body is sent (POST and the others after HEAD
 *                send Content-Length: 0)
 * expect_status: the final status must equal this, 100..599 (default 200)
 * header:NAME:   a request header; the object "header": {"NAME": "value"} in the
 *                config arrives as these keys
 * tls_verify:    verify the server's certificate and name (default true)
 * ca_file:       PEM bundle to verify against instead of the system's
 * max_redirects: redirects followed, as Python requests does, 0..50 (default 5;
 *                0 when a credential-like header other than Authorization or
 *                Cookie is set, since curl would send it on to any host a
 *                redirect names; asking for redirects then is refused);
 *                0 means the first answer counts, even a 3xx. A POST turns into
 *                a GET on 301, 302 and 303, as in requests; PUT, DELETE, PATCH
 *                and OPTIONS keep their method, also on 303 (requests: GET)
 * proxy:         proxy URL (http, https, socks4, socks4a, socks5, socks5h); by
 *                default none, and the http_proxy/https_proxy/no_proxy
 *                environment variables are ignored so a check probes what the
 *                configuration names and nothing else
 *
 * Each instance keeps one curl easy handle for its lifetime, so connections
 * are kept alive between runs. The body is counted and discarded, never
 * buffered; past HTTP_BODY_CAP the transfer is cut and the status still counts.
 * User names and passwords in url or proxy and the values of credential-like
 * headers (Authorization, Cookie, *token*, ...) never reach a message or the log.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include <healthd/plugin.h>

static const char http_pin_anchor; /* an address inside this object, for dladdr() */

#define HTTP_BODY_CAP       (1024 * 1024) /* bytes read from a body before cutting it */
#define HTTP_MAX_REDIRECTS  50            /* upper bound of the max_redirects option */
#define HTTP_MESSAGE_SIZE   512
/* curl's timer fires at its timeout at the earliest: curl gets the time left
 * to the deadline (api->time_left_ms), and the host's grace past it
 * (HEALTHD_DEADLINE_GRACE_MS) lets curl's own answer be heard. */
#define HTTP_HEADER_PREFIX  "header:"

enum http_how {
	HTTP_HOW_GET,    /* CURLOPT_HTTPGET */
	HTTP_HOW_HEAD,   /* CURLOPT_NOBODY: curl then expects no body */
	HTTP_HOW_POST,   /* CURLOPT_POST, empty: 301-303 turn into GET, as in requests */
	HTTP_HOW_CUSTOM, /* CURLOPT_CUSTOMREQUEST, plus Content-Length: 0 as requests sends */
};

/* method     how the request is made */
static const struct {
	const char *name;
	enum http_how how;
} http_methods[] = {
	{"GET",     HTTP_HOW_GET},
	{"HEAD",    HTTP_HOW_HEAD},
	{"POST",    HTTP_HOW_POST},
	{"PUT",     HTTP_HOW_CUSTOM},
	{"DELETE",  HTTP_HOW_CUSTOM},
	{"PATCH",   HTTP_HOW_CUSTOM},
	{"OPTIONS", HTTP_HOW_CUSTOM},
};

/* Headers the plugin refuses: it sends no body, so framing headers would hang the server. */
static const char *const http_refused_headers[] = {"Content-Length", "Transfer-Encoding"};

/* Header names whose values count as secrets (exact match, case-insensitive)... */
static const char *const http_secret_headers[] = {"Authorization", "Proxy-Authorization",
                                                  "Cookie"};
/* ...or that contain one of these (case-insensitive). */
static const char *const http_secret_words[] = {"auth", "token", "key", "secret", "password",
                                                "session"};

static const char *const http_proxy_schemes[] = {"http", "https", "socks4", "socks4a",
                                                 "socks5", "socks5h"};

/*
 * One configured check. Created by instantiate() on the main thread; after
 * that only run() (never twice at once for the same check) and destroy() touch
 * it, so it needs no lock. No state is shared between instances.
 */
struct http_check {
	const struct healthd_host_api *api;
	CURL *curl;
	struct curl_slist *headers; /* request headers, owned; curl keeps a pointer */
	struct curl_slist *secrets; /* masked wherever curl's text enters a message */
	long expect_status;
	long max_redirects;
	/* the first credential-like header curl would pass on across a redirect
	 * (it drops only Authorization and Cookie there), or "" */
	char credential_header[64];
	size_t body_bytes;          /* per run: bytes of body seen */
	bool body_capped;           /* per run: the write callback cut the body */
	struct healthd_report *report; /* per run: for the progress callback */
	char errbuf[CURL_ERROR_SIZE];
};

static size_t http_discard(char *data, size_t size, size_t nmemb, void *userdata);
static void http_destroy(void *state);
static enum healthd_status http_run(void *state, struct healthd_report *report);
static void http_describe_error(struct http_check *h, CURLcode rc, long long timeout_ms,
                                char *buf, size_t len);
static void http_scrub(const struct http_check *h, char *buf, size_t len);

/* ---- run ---------------------------------------------------------------- */

/* Counts the body and throws it away; cutting it off (return 0) aborts the transfer. */
static size_t
http_discard(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct http_check *h = userdata;

	(void)data;
	h->body_bytes += nmemb; /* size is always 1 for data */
	if (h->body_bytes > HTTP_BODY_CAP) {
		h->body_capped = true;
		return 0;
	}
	return size * nmemb;
}

/* Copies src into buf as one printable line: control characters become spaces. */
static void
http_one_line(char *buf, size_t len, const char *src)
{
	size_t i;

	snprintf(buf, len, "%s", src);
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
	while (i > 0 && buf[i - 1] == ' ')
		buf[--i] = '\0';
}

/*
 * Replaces every secret in buf (a string in len bytes) with "***", cutting
 * the result at len. Scans the original text only, so a secret that looks
 * like the mask cannot loop.
 */
static void
http_scrub(const struct http_check *h, char *buf, size_t len)
{
	static const char mask[] = "***";
	char out[HTTP_MESSAGE_SIZE];
	const struct curl_slist *s;
	size_t i = 0, o = 0, m, slen;

	if (len > sizeof(out))
		len = sizeof(out);
	while (buf[i] != '\0' && o < len - 1) {
		for (s = h->secrets; s != NULL; s = s->next) {
			slen = strlen(s->data);
			if (slen > 0 && strncmp(buf + i, s->data, slen) == 0)
				break;
		}
		if (s == NULL) {
			out[o++] = buf[i++];
			continue;
		}
		for (m = 0; m < sizeof(mask) - 1 && o < len - 1; m++)
			out[o++] = mask[m];
		i += slen;
	}
	out[o] = '\0';
	memcpy(buf, out, o + 1);
}

static bool
http_is_tls_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		return true;
	default:
		return false;
	}
}

/* One line for a failed transfer; curl's reason comes from errbuf, scrubbed. */
static void
http_describe_error(struct http_check *h, CURLcode rc, long long timeout_ms, char *buf,
                    size_t len)
{
	char reason[CURL_ERROR_SIZE];
	long os_errno = 0;

	/* curl's words may quote a URL (a proxy's, say); our own never hold a secret. */
	http_one_line(reason, sizeof(reason),
	              h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(rc));
	http_scrub(h, reason, sizeof(reason));
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(buf, len, "timeout after %lld ms", timeout_ms);
		break;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == ECONNREFUSED)
			snprintf(buf, len, "connection refused");
		else
			snprintf(buf, len, "cannot connect: %s", reason);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(buf, len, "DNS failure: %s", reason);
		break;
	case CURLE_COULDNT_RESOLVE_PROXY:
		snprintf(buf, len, "DNS failure for the proxy: %s", reason);
		break;
	case CURLE_GOT_NOTHING:
		snprintf(buf, len, "connection closed without a response");
		break;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		snprintf(buf, len, "connection broken: %s", reason);
		break;
	case CURLE_TOO_MANY_REDIRECTS:
		snprintf(buf, len, "too many redirects (more than %ld)", h->max_redirects);
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		snprintf(buf, len, "redirect refused: %s", reason);
		break;
	case CURLE_WEIRD_SERVER_REPLY:
		snprintf(buf, len, "not an HTTP response: %s", reason);
		break;
	default:
		if (http_is_tls_error(rc))
			snprintf(buf, len, "TLS failure: %s", reason);
		else
			snprintf(buf, len, "%s", reason);
		break;
	}
}

/* Called by curl while a transfer runs: stop once the host no longer waits. */
static int
http_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
              curl_off_t ulnow)
{
	struct http_check *h = clientp;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return h->report != NULL && h->api->cancelled(h->report);
}

static enum healthd_status
http_run(void *state, struct healthd_report *report)
{
	struct http_check *h = state;
	const struct healthd_host_api *api = h->api;
	char msg[HTTP_MESSAGE_SIZE], suffix[64] = "";
	int64_t start, remaining;
	long status = 0, redirects = 0;
	CURLcode rc;

	start = api->now_ms();
	remaining = api->time_left_ms(report);
	if (remaining <= 0) {
		/* CURLOPT_TIMEOUT_MS 0 would mean no timeout at all. */
		api->message(report, "timeout: the deadline passed before the request started");
		return HEALTHD_CRITICAL;
	}
	h->errbuf[0] = '\0';
	h->body_bytes = 0;
	h->body_capped = false;
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, (long)remaining);
	h->report = report;
	rc = curl_easy_perform(h->curl);
	h->report = NULL;
	if (rc == CURLE_WRITE_ERROR && h->body_capped)
		rc = CURLE_OK; /* the status line and headers arrived; the rest is not needed */
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		rc = CURLE_OPERATION_TIMEDOUT; /* cancelled: the host stopped waiting */
	if (rc != CURLE_OK) {
		/* "timeout after N ms" names the check's configured timeout */
		http_describe_error(h, rc, (long long)api->timeout_ms(report), msg, sizeof(msg));
		api->message(report, "%s", msg);
		if (rc == CURLE_OPERATION_TIMEDOUT)
			api->timed_out(report);
		return HEALTHD_CRITICAL;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h->curl, CURLINFO_REDIRECT_COUNT, &redirects);
	if (redirects > 0)
		snprintf(suffix, sizeof(suffix), " (after %ld redirect%s)", redirects,
		         redirects == 1 ? "" : "s");
	if (status != h->expect_status) {
		api->message(report, "expected %ld, got %ld%s", h->expect_status, status, suffix);
		return HEALTHD_CRITICAL;
	}
	api->message(report, "%ld in %lld ms%s", status, (long long)(api->now_ms() - start),
	             suffix);
	return HEALTHD_OK;
}

/* ---- instantiate -------------------------------------------------------- */

static void
http_destroy(void *state)
{
	struct http_check *h = state;

	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->headers);
	curl_slist_free_all(h->secrets);
	free(h);
}

/* Appends a copy of s to *list. Returns 0, or -1 out of memory. */
static int
http_slist_add(struct curl_slist **list, const char *s)
{
	struct curl_slist *l;

	l = curl_slist_append(*list, s);
	if (l == NULL)
		return -1;
	*list = l;
	return 0;
}

/* RFC 9110 token: what a header name may consist of. */
static bool
http_is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return false;
	return true;
}

/* Whether a header value holds a character RFC 9110 forbids there (HTAB is allowed). */
static bool
http_has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return true;
	return false;
}

static bool
http_is_secret_header(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(http_secret_headers) / sizeof(http_secret_headers[0]); i++)
		if (strcasecmp(name, http_secret_headers[i]) == 0)
			return true;
	for (i = 0; i < sizeof(http_secret_words) / sizeof(http_secret_words[0]); i++)
		if (strcasestr(name, http_secret_words[i]) != NULL)
			return true;
	return false;
}

/*
 * Adds the user and password of a parsed URL to the secrets, as written and
 * decoded, so that no form reaches a message. Returns 0, or -1 out of memory.
 */
static int
http_add_url_secrets(struct http_check *h, CURLU *u)
{
	static const CURLUPart parts[] = {CURLUPART_PASSWORD, CURLUPART_USER};
	static const unsigned int forms[] = {0, CURLU_URLDECODE};
	char *text;
	size_t i;
	int r = 0;

	for (i = 0; i < 4 && r == 0; i++) {
		if (curl_url_get(u, parts[i / 2], &text, forms[i % 2]) != CURLUE_OK)
			continue;
		r = http_slist_add(&h->secrets, text);
		curl_free(text);
	}
	return r;
}

/*
 * Parses `value` of option `key` as an absolute URL whose scheme is one of
 * `schemes`, and adds its password to the secrets. Never puts the URL itself
 * in err: it may carry credentials. Returns 0, or -1 with err set.
 */
static int
http_check_url(struct http_check *h, const char *key, const char *value,
               const char *const *schemes, size_t nschemes, const char *what, char *err,
               size_t errlen)
{
	CURLU *u;
	CURLUcode uc;
	char *scheme = NULL, *host = NULL;
	size_t i;
	int r = -1;

	u = curl_url();
	if (u == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	uc = curl_url_set(u, CURLUPART_URL, value, CURLU_NON_SUPPORT_SCHEME);
	if (uc != CURLUE_OK) {
		snprintf(err, errlen, "%s: not a valid absolute URL (%s)", key, curl_url_strerror(uc));
		goto out;
	}
	if (http_add_url_secrets(h, u) == -1) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		snprintf(err, errlen, "%s: not a valid absolute URL (no scheme)", key);
		goto out;
	}
	for (i = 0; i < nschemes; i++)
		if (strcasecmp(scheme, schemes[i]) == 0)
			break;
	if (i == nschemes) {
		snprintf(err, errlen, "%s: only %s are supported, got \"%.16s\"", key, what, scheme);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
		snprintf(err, errlen, "%s: the URL has no host", key);
		goto out;
	}
	r = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return r;
}

/*
 * Collects the "header:NAME" options into h->headers, claiming each one it
 * accepts with api->option() so the host does not refuse it as unknown.
 * Returns 0, or -1 with err set; *has_content_type tells whether the
 * configuration sets Content-Type.
 */
static int
http_read_headers(struct http_check *h, const struct healthd_host_api *api,
                  const struct healthd_options *options, bool *has_content_type, char *err,
                  size_t errlen)
{
	const size_t plen = sizeof(HTTP_HEADER_PREFIX) - 1;
	const char *key, *value, *name;
	char *line;
	size_t i, j, n;
	int r;

	*has_content_type = false;
	for (i = 0; api->option_at(options, i, &key, &value); i++) {
		if (strcmp(key, "header") == 0) {
			snprintf(err, errlen, "header: expected an object of header names to values, "
			                      "e.g. {\"X-Probe\": \"healthd\"}");
			return -1;
		}
		if (strncmp(key, HTTP_HEADER_PREFIX, plen) != 0)
			continue;
		name = key + plen;
		if (!http_is_token(name)) {
			snprintf(err, errlen, "%.80s: not a valid header name", key);
			return -1;
		}
		for (j = 0; j < sizeof(http_refused_headers) / sizeof(http_refused_headers[0]); j++)
			if (strcasecmp(name, http_refused_headers[j]) == 0) {
				snprintf(err, errlen, "%.80s: cannot be set, the check sends no body",
				         key);
				return -1;
			}
		if (strpbrk(value, "\r\n") != NULL) {
			snprintf(err, errlen, "%.80s: the value contains a line break", key);
			return -1;
		}
		if (http_has_control(value)) {
			snprintf(err, errlen, "%.80s: the value contains a control character", key);
			return -1;
		}
		if (strcasecmp(name, "Content-Type") == 0)
			*has_content_type = true;
		/* "Name;" is curl's way to send a header with an empty value. */
		n = strlen(name) + strlen(value) + 3;
		line = malloc(n);
		if (line == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (value[0] == '\0')
			snprintf(line, n, "%s;", name);
		else
			snprintf(line, n, "%s: %s", name, value);
		r = http_slist_add(&h->headers, line);
		free(line);
		if (r == 0 && value[0] != '\0' && http_is_secret_header(name)) {
			r = http_slist_add(&h->secrets, value);
			if (h->credential_header[0] == '\0' && strcasecmp(name, "Authorization") != 0 &&
			    strcasecmp(name, "Cookie") != 0 &&
			    strcasecmp(name, "Proxy-Authorization") != 0)
				snprintf(h->credential_header, sizeof(h->credential_header), "%s", name);
		}
		if (r == -1) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		(void)api->option(options, key); /* claim it */
	}
	return 0;
}

/* Sets one curl option in http_setup(); records the first failure in rc. */
#define HTTP_SETOPT(rc, curl, opt, val)                                                       \
	do {                                                                                  \
		if ((rc) == CURLE_OK)                                                         \
			(rc) = curl_easy_setopt((curl), (opt), (val));                        \
	} while (0)

/* Creates h->curl with every option that stays the same from run to run. */
static int
http_setup(struct http_check *h, const char *url, enum http_how how, const char *method,
           bool tls_verify, const char *ca_file, const char *proxy, char *err, size_t errlen)
{
	CURLcode rc = CURLE_OK;
	CURL *c;

	c = h->curl = curl_easy_init();
	if (c == NULL) {
		snprintf(err, errlen, "curl_easy_init failed");
		return -1;
	}
	HTTP_SETOPT(rc, c, CURLOPT_URL, url);
	HTTP_SETOPT(rc, c, CURLOPT_PROTOCOLS_STR, "http,https");
	HTTP_SETOPT(rc, c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/* Worker threads: no SIGALRM for DNS timeouts. */
	HTTP_SETOPT(rc, c, CURLOPT_NOSIGNAL, 1L);
	/* On a timeout, libcurl 7.88 waits for its resolver thread's getaddrinfo()
	 * unless told to leave it: a slow DNS server would hold the run seconds
	 * past its deadline. The thread left behind finishes on its own inside
	 * libcurl, which is why http_load() pins this plugin (and so libcurl). */
	HTTP_SETOPT(rc, c, CURLOPT_QUICK_EXIT, 1L);
	HTTP_SETOPT(rc, c, CURLOPT_NOPROGRESS, 0L);
	HTTP_SETOPT(rc, c, CURLOPT_XFERINFOFUNCTION, http_progress);
	HTTP_SETOPT(rc, c, CURLOPT_XFERINFODATA, h);
	HTTP_SETOPT(rc, c, CURLOPT_ERRORBUFFER, h->errbuf);
	HTTP_SETOPT(rc, c, CURLOPT_WRITEFUNCTION, http_discard);
	HTTP_SETOPT(rc, c, CURLOPT_WRITEDATA, h);
	HTTP_SETOPT(rc, c, CURLOPT_FOLLOWLOCATION, h->max_redirects > 0 ? 1L : 0L);
	HTTP_SETOPT(rc, c, CURLOPT_MAXREDIRS, h->max_redirects);
	HTTP_SETOPT(rc, c, CURLOPT_USERAGENT, "healthd-http/1.0");
	/* "" turns proxies off, including the *_proxy environment variables. */
	HTTP_SETOPT(rc, c, CURLOPT_PROXY, proxy != NULL ? proxy : "");
	HTTP_SETOPT(rc, c, CURLOPT_SSL_VERIFYPEER, tls_verify ? 1L : 0L);
	HTTP_SETOPT(rc, c, CURLOPT_SSL_VERIFYHOST, tls_verify ? 2L : 0L);
	if (ca_file != NULL)
		HTTP_SETOPT(rc, c, CURLOPT_CAINFO, ca_file);
	switch (how) {
	case HTTP_HOW_GET:
		HTTP_SETOPT(rc, c, CURLOPT_HTTPGET, 1L);
		break;
	case HTTP_HOW_HEAD:
		HTTP_SETOPT(rc, c, CURLOPT_NOBODY, 1L);
		break;
	case HTTP_HOW_POST:
		HTTP_SETOPT(rc, c, CURLOPT_POST, 1L);
		HTTP_SETOPT(rc, c, CURLOPT_POSTFIELDSIZE, 0L);
		HTTP_SETOPT(rc, c, CURLOPT_POSTFIELDS, "");
		break;
	case HTTP_HOW_CUSTOM:
		HTTP_SETOPT(rc, c, CURLOPT_CUSTOMREQUEST, method);
		break;
	}
	HTTP_SETOPT(rc, c, CURLOPT_HTTPHEADER, h->headers);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "libcurl refused an option: %s", curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

static int
http_instantiate(struct healthd_host *host, const struct healthd_host_api *api,
                 const char *check_name, const struct healthd_options *options, char *err,
                 size_t errlen)
{
	static const char *const url_schemes[] = {"http", "https"};
	struct healthd_check check = HEALTHD_CHECK_INIT;
	struct http_check *h;
	const char *url, *method, *ca_file, *proxy;
	bool tls_verify, has_content_type;
	int64_t expect_status, max_redirects;
	bool redirects_set;
	enum http_how how = HTTP_HOW_GET;
	size_t i;

	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	h->api = api;

	url = api->option(options, "url");
	if (url == NULL || url[0] == '\0') {
		snprintf(err, errlen, "url: missing");
		goto fail;
	}
	if (http_check_url(h, "url", url, url_schemes, 2, "http and https", err, errlen) == -1)
		goto fail;

	method = api->option(options, "method");
	if (method == NULL)
		method = "GET";
	for (i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++)
		if (strcasecmp(method, http_methods[i].name) == 0)
			break;
	if (i == sizeof(http_methods) / sizeof(http_methods[0])) {
		snprintf(err, errlen,
		         "method: expected GET, HEAD, POST, PUT, DELETE, PATCH or OPTIONS, got "
		         "\"%.32s\"", method);
		goto fail;
	}
	method = http_methods[i].name; /* upper case, as requests sends it */
	how = http_methods[i].how;

	if (api->option_int(options, "expect_status", 200, 100, 599, &expect_status) == -1) {
		snprintf(err, errlen, "expect_status: expected an integer from 100 to 599");
		goto fail;
	}
	h->expect_status = (long)expect_status;

	redirects_set = api->option(options, "max_redirects") != NULL;
	if (api->option_int(options, "max_redirects", 5, 0, HTTP_MAX_REDIRECTS,
	                    &max_redirects) == -1) {
		snprintf(err, errlen, "max_redirects: expected an integer from 0 to %d",
		         HTTP_MAX_REDIRECTS);
		goto fail;
	}
	h->max_redirects = (long)max_redirects;

	if (api->option_bool(options, "tls_verify", true, &tls_verify) == -1) {
		snprintf(err, errlen, "tls_verify: expected true or false");
		goto fail;
	}

	ca_file = api->option(options, "ca_file");
	if (ca_file != NULL && access(ca_file, R_OK) == -1) {
		snprintf(err, errlen, "ca_file: cannot read %.200s: %s", ca_file, strerror(errno));
		goto fail;
	}

	proxy = api->option(options, "proxy");
	if (proxy != NULL && proxy[0] != '\0' &&
	    http_check_url(h, "proxy", proxy, http_proxy_schemes,
	                   sizeof(http_proxy_schemes) / sizeof(http_proxy_schemes[0]),
	                   "http, https, socks4, socks4a, socks5 and socks5h", err, errlen) == -1)
		goto fail;

	if (http_read_headers(h, api, options, &has_content_type, err, errlen) == -1)
		goto fail;
	/* libcurl sends custom headers to whatever host a redirect names: with a
	 * credential among them, redirects are off unless asked for, and asking
	 * for them is refused rather than leaking it. */
	if (h->credential_header[0] != '\0') {
		if (redirects_set && h->max_redirects > 0) {
			snprintf(err, errlen, "max_redirects: header %s looks like a credential, and "
			         "a redirect would carry it to any host; point url at the final "
			         "address and set max_redirects to 0", h->credential_header);
			goto fail;
		}
		h->max_redirects = 0;
	}
	/* The empty POST: no form Content-Type (curl's default), as requests sends none. */
	if (how == HTTP_HOW_POST && !has_content_type &&
	    http_slist_add(&h->headers, "Content-Type:") == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (how == HTTP_HOW_CUSTOM && http_slist_add(&h->headers, "Content-Length: 0") == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}

	if (http_setup(h, url, how, method, tls_verify, ca_file, proxy, err, errlen) == -1)
		goto fail;

	check.name = check_name;
	check.run = http_run;
	check.destroy = http_destroy;
	check.state = h;
	if (api->register_check(host, &check, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	http_destroy(h);
	return -1;
}

/* ---- load / unload ------------------------------------------------------ */

/*
 * curl_global_init is not thread-safe with every libcurl build. That is safe
 * here: the host calls load() once, on its main thread, before any worker
 * thread runs a check, and unload() after every check's destroy().
 */
static int
http_load(struct healthd_host *host, const struct healthd_host_api *api, char *err,
          size_t errlen)
{
	const curl_version_info_data *v;
	Dl_info self;
	CURLcode rc;

	rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed: %s", curl_easy_strerror(rc));
		return -1;
	}
	/* Never unloaded: a resolver thread left by CURLOPT_QUICK_EXIT may still
	 * be inside libcurl after the host dlcloses us. */
	if (dladdr(&http_pin_anchor, &self) == 0 || self.dli_fname == NULL ||
	    dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == NULL)
		api->log(host, HEALTHD_LOG_WARNING, "cannot pin http.so in memory; a name lookup "
		         "still running at shutdown may crash the exit");
	v = curl_version_info(CURLVERSION_NOW);
	/* Without an asynchronous resolver and with NOSIGNAL, DNS ignores the deadline. */
	if ((v->features & CURL_VERSION_ASYNCHDNS) == 0)
		api->log(host, HEALTHD_LOG_WARNING,
		         "libcurl %s has no asynchronous resolver: name lookups may overrun "
		         "a check's timeout", v->version);
	return 0;
}

static void
http_unload(void)
{
	curl_global_cleanup();
}

HEALTHD_PLUGIN(.name = "http",
               .version = "1.0",
               .description = "HTTP(S) endpoint answers with the expected status (libcurl)",
               .load = http_load,
               .instantiate = http_instantiate,
               .unload = http_unload);
