/*
 * iot:Connect at CONNECT time, for Mosquitto 2.0 (plugin API version 5).
 *
 * Mosquitto skips authentication entirely with `use_identity_as_username`, so the device listener
 * does without it and loads this plugin instead. For every CONNECT on that listener, before
 * Mosquitto looks for a session to take over, the plugin reads the subject CN of the client's
 * (already verified) certificate and asks iot-jobs-local whether that certificate may connect with
 * that client id. Yes: the username becomes the CN (so the per-certificate ACL applies, as with
 * use_identity_as_username) and the connection proceeds, taking over an older one with the same
 * id. No, or no answer in time: CONNACK "not authorized", and the holder of the id stays.
 *
 * The question goes over a socket the service hands the broker at start (`plugin_opt_socket_fd`), one
 * request at a time (Mosquitto's loop is single-threaded):
 *   request  = seq:u32be, cn_len:u16be, cn, id_len:u16be, client_id
 *   response = seq:u32be, 'Y' | 'N'
 * Answers to an older seq (one that timed out) are skipped.
 *
 * Mosquitto also runs this check again for every connected client on each SIGHUP reload (the
 * service reloads to apply ACL changes). iot:Connect is decided when a client connects, as on AWS,
 * so a (CN, client id) pair that was allowed and is still connected is allowed again without
 * asking: `granted` counts them, and MOSQ_EVT_DISCONNECT takes them out. The one thing this lets
 * through: the same certificate connecting again with the same id while its first connection is
 * still up, after its policy stopped allowing that id.
 *
 * The ACL (what each certificate may publish and receive) lives here too, when the service hands
 * a second socket (`plugin_opt_acl_fd`): instead of an ACL file that the broker re-reads whole on
 * SIGHUP (O(fleet) per change), the service sends the section of each certificate that changed and
 * the plugin acknowledges once it is in force. A thread reads that socket; the table is guarded by
 * a mutex the MQTT thread takes for each check (uncontended but for the moment of an update):
 *   update = seq:u32be, op:u8, cn_len:u16be, body_len:u32be, cn, body
 *     op 'S': set cn's entries, body = lines "<mode> <filter>\n", mode 'd' deny (both directions,
 *             checked first), 'r' read (delivery), 'w' write (PUBLISH), 'b' both
 *     op 'D': cn has no rights; op 'C': nobody has any; op 'R': the initial table is complete
 *   ack    = seq:u32be, sent once the update applies to every later check
 * plugin_init reads updates until 'R' before it returns, so a restarted broker serves no client
 * before it knows the whole table. SUBSCRIBE is always allowed (iot:Subscribe is not enforced);
 * delivery is checked with iot:Receive's entries, as the ACL file did.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

static mosquitto_plugin_id_t *plugin_id = NULL;
static int service_fd = -1;
static int timeout_ms = 3000;
static uint32_t seq = 0;

/* (CN, client id) pairs allowed and connected right now, with how many connections hold each. */
#define GRANTED_BUCKETS 16384
struct granted {
	struct granted *next;
	unsigned count;
	char key[];  /* cn, '\0', client id, '\0' */
};
static struct granted *granted[GRANTED_BUCKETS];

static size_t granted_bucket(const char *cn, const char *client_id)
{
	uint64_t h = 1469598103934665603ULL;  /* FNV-1a over cn, a separator and the id */
	for(const char *c = cn; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	h = (h ^ 0xFF) * 1099511628211ULL;
	for(const char *c = client_id; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	return (size_t)(h % GRANTED_BUCKETS);
}

static struct granted **granted_find(const char *cn, const char *client_id)
{
	struct granted **at = &granted[granted_bucket(cn, client_id)];
	size_t cn_len = strlen(cn);
	for(; *at; at = &(*at)->next){
		if(!strcmp((*at)->key, cn) && !strcmp((*at)->key + cn_len + 1, client_id)) break;
	}
	return at;
}

static void granted_add(const char *cn, const char *client_id)
{
	struct granted **at = granted_find(cn, client_id);
	if(*at){
		(*at)->count++;
		return;
	}
	size_t cn_len = strlen(cn), id_len = strlen(client_id);
	struct granted *g = malloc(sizeof *g + cn_len + id_len + 2);
	if(!g) return;
	g->next = NULL;
	g->count = 1;
	memcpy(g->key, cn, cn_len + 1);
	memcpy(g->key + cn_len + 1, client_id, id_len + 1);
	*at = g;
}

static void granted_remove(const char *cn, const char *client_id)
{
	struct granted **at = granted_find(cn, client_id);
	struct granted *g = *at;
	if(g && --g->count == 0){
		*at = g->next;
		free(g);
	}
}

/* The ACL table ---------------------------------------------------------------------------- */
struct acl_entry {
	char mode;
	const char *filter;  /* into blob */
};
struct acl_user {
	struct acl_user *next;
	char *cn;
	size_t count;
	struct acl_entry *entries;
	char *blob;
};
#define ACL_BUCKETS 65536
static struct acl_user *acl_users[ACL_BUCKETS];
static pthread_mutex_t acl_lock = PTHREAD_MUTEX_INITIALIZER;
static int acl_fd = -1;

static size_t acl_bucket(const char *cn, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for(size_t i = 0; i < len; i++) h = (h ^ (unsigned char)cn[i]) * 1099511628211ULL;
	return (size_t)(h % ACL_BUCKETS);
}

static void acl_free(struct acl_user *u)
{
	if(!u) return;
	free(u->cn);
	free(u->entries);
	free(u->blob);
	free(u);
}

/* A user from an 'S' body, owning cn and body; NULL when out of memory (then only body is freed). */
static struct acl_user *acl_parse(char *cn, char *body, size_t body_len)
{
	size_t lines = 0;
	for(size_t i = 0; i < body_len; i++) if(body[i] == '\n') lines++;
	struct acl_user *u = calloc(1, sizeof *u);
	struct acl_entry *entries = calloc(lines ? lines : 1, sizeof *entries);
	if(!u || !entries){
		free(u);
		free(entries);
		free(body);
		return NULL;
	}
	u->cn = cn;
	u->blob = body;
	u->entries = entries;
	char *line = body, *end = body + body_len;
	while(line < end){
		char *nl = memchr(line, '\n', (size_t)(end - line));
		if(!nl) break;
		*nl = '\0';
		if(nl - line >= 3 && line[0] && line[1] == ' ' && strchr("drwb", line[0])){
			u->entries[u->count].mode = line[0];
			u->entries[u->count].filter = line + 2;
			u->count++;
		}
		line = nl + 1;
	}
	return u;
}

/* Replace (or with `u` NULL, remove) the entry of `cn`; the caller frees what comes back. */
static struct acl_user *acl_swap(const char *cn, size_t cn_len, struct acl_user *u)
{
	struct acl_user **at = &acl_users[acl_bucket(cn, cn_len)];
	for(; *at; at = &(*at)->next){
		if(strlen((*at)->cn) == cn_len && !memcmp((*at)->cn, cn, cn_len)) break;
	}
	struct acl_user *old = *at;
	if(old){
		*at = old->next;
		old->next = NULL;
	}
	if(u){
		u->next = *at;
		*at = u;
	}
	return old;
}

static void acl_clear(void)
{
	pthread_mutex_lock(&acl_lock);
	for(size_t i = 0; i < ACL_BUCKETS; i++){
		struct acl_user *u = acl_users[i];
		acl_users[i] = NULL;
		while(u){
			struct acl_user *next = u->next;
			acl_free(u);
			u = next;
		}
	}
	pthread_mutex_unlock(&acl_lock);
}

static int read_exact(int fd, void *data, size_t len)
{
	unsigned char *p = data;
	while(len > 0){
		ssize_t n = read(fd, p, len);
		if(n == 0) return 0;
		if(n < 0){
			if(errno == EINTR) continue;
			return 0;
		}
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

static int write_exact(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;
	while(len > 0){
		ssize_t n = write(fd, p, len);
		if(n < 0){
			if(errno == EINTR) continue;
			return 0;
		}
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

/* Read and apply one update; its op, or 0 when the socket closed or failed. */
static char acl_read_update(void)
{
	unsigned char head[11];
	if(!read_exact(acl_fd, head, sizeof head)) return 0;
	char op = (char)head[4];
	size_t cn_len = ((size_t)head[5] << 8) | head[6];
	size_t body_len = ((size_t)head[7] << 24) | ((size_t)head[8] << 16) | ((size_t)head[9] << 8) | head[10];
	char *cn = malloc(cn_len + 1);
	char *body = malloc(body_len + 1);
	if(!cn || !body || !read_exact(acl_fd, cn, cn_len) || !read_exact(acl_fd, body, body_len)){
		free(cn);
		free(body);
		return 0;
	}
	cn[cn_len] = '\0';
	body[body_len] = '\0';
	if(op == 'S'){
		/* out of memory: the certificate loses its rights rather than keeping older ones */
		struct acl_user *u = acl_parse(cn, body, body_len);
		pthread_mutex_lock(&acl_lock);
		struct acl_user *old = acl_swap(cn, cn_len, u);
		pthread_mutex_unlock(&acl_lock);
		acl_free(old);
		if(!u) free(cn);
	}else{
		if(op == 'D'){
			pthread_mutex_lock(&acl_lock);
			struct acl_user *old = acl_swap(cn, cn_len, NULL);
			pthread_mutex_unlock(&acl_lock);
			acl_free(old);
		}else if(op == 'C'){
			acl_clear();
		}
		free(cn);
		free(body);
	}
	if(!write_exact(acl_fd, head, 4)) return 0;  /* the ack: the update's seq */
	return op ? op : 'S';
}

static void *acl_reader(void *arg)
{
	(void)arg;
	while(acl_read_update()){
	}
	return NULL;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)userdata;
	struct mosquitto_evt_acl_check *ed = event_data;
	if(ed->access == MOSQ_ACL_SUBSCRIBE || ed->access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
	char want = ed->access == MOSQ_ACL_READ ? 'r' : ed->access == MOSQ_ACL_WRITE ? 'w' : 0;
	const char *username = mosquitto_client_username(ed->client);
	if(!want || !username || !ed->topic) return MOSQ_ERR_ACL_DENIED;
	int rc = MOSQ_ERR_ACL_DENIED;
	size_t len = strlen(username);
	pthread_mutex_lock(&acl_lock);
	struct acl_user *u = acl_users[acl_bucket(username, len)];
	while(u && strcmp(u->cn, username)) u = u->next;
	if(u){
		bool match = false, denied = false;
		for(size_t i = 0; i < u->count && !denied; i++){
			if(u->entries[i].mode == 'd' && mosquitto_topic_matches_sub(u->entries[i].filter, ed->topic, &match) == MOSQ_ERR_SUCCESS && match){
				denied = true;
			}
		}
		for(size_t i = 0; i < u->count && !denied; i++){
			char mode = u->entries[i].mode;
			if((mode == want || mode == 'b') && mosquitto_topic_matches_sub(u->entries[i].filter, ed->topic, &match) == MOSQ_ERR_SUCCESS && match){
				rc = MOSQ_ERR_SUCCESS;
				break;
			}
		}
	}
	pthread_mutex_unlock(&acl_lock);
	return rc;
}

/* At start: apply updates until the service says the table is complete ('R'). */
static int acl_load(void)
{
	int flags = fcntl(acl_fd, F_GETFL);
	if(flags >= 0) fcntl(acl_fd, F_SETFL, flags & ~O_NONBLOCK);
	for(;;){
		char op = acl_read_update();
		if(op == 0){
			mosquitto_log_printf(MOSQ_LOG_ERR, "iot-jobs-local: the ACL feed closed before the table was complete");
			return MOSQ_ERR_UNKNOWN;
		}
		if(op == 'R') return MOSQ_ERR_SUCCESS;
	}
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for `events` on the service socket until `deadline`; 1 if ready, 0 on timeout or error. */
static int wait_for(short events, long long deadline)
{
	for(;;){
		long long left = deadline - now_ms();
		if(left <= 0) return 0;
		struct pollfd p = {service_fd, events, 0};
		int rc = poll(&p, 1, (int)left);
		if(rc > 0) return (p.revents & (POLLERR | POLLNVAL)) ? 0 : 1;
		if(rc == 0) return 0;
		if(errno != EINTR) return 0;
	}
}

static int write_all(const unsigned char *data, size_t len, long long deadline)
{
	while(len > 0){
		if(!wait_for(POLLOUT, deadline)) return 0;
		ssize_t n = write(service_fd, data, len);
		if(n < 0){
			if(errno == EINTR || errno == EAGAIN) continue;
			return 0;
		}
		data += n;
		len -= (size_t)n;
	}
	return 1;
}

static int read_all(unsigned char *data, size_t len, long long deadline)
{
	while(len > 0){
		if(!wait_for(POLLIN, deadline)) return 0;
		ssize_t n = read(service_fd, data, len);
		if(n == 0) return 0;
		if(n < 0){
			if(errno == EINTR || errno == EAGAIN) continue;
			return 0;
		}
		data += n;
		len -= (size_t)n;
	}
	return 1;
}

/* 'Y', 'N', or 0 when the service did not answer in time. */
static char ask(const char *cn, const char *client_id)
{
	size_t cn_len = strlen(cn), id_len = strlen(client_id);
	if(service_fd < 0 || cn_len > 0xFFFF || id_len > 0xFFFF) return 0;
	size_t len = 4 + 2 + cn_len + 2 + id_len;
	unsigned char *request = malloc(len);
	if(!request) return 0;
	uint32_t mine = ++seq;
	unsigned char *p = request;
	*p++ = (unsigned char)(mine >> 24); *p++ = (unsigned char)(mine >> 16);
	*p++ = (unsigned char)(mine >> 8); *p++ = (unsigned char)mine;
	*p++ = (unsigned char)(cn_len >> 8); *p++ = (unsigned char)cn_len;
	memcpy(p, cn, cn_len); p += cn_len;
	*p++ = (unsigned char)(id_len >> 8); *p++ = (unsigned char)id_len;
	memcpy(p, client_id, id_len);
	long long deadline = now_ms() + timeout_ms;
	int sent = write_all(request, len, deadline);
	free(request);
	if(!sent) return 0;
	for(;;){
		unsigned char answer[5];
		if(!read_all(answer, sizeof answer, deadline)) return 0;
		uint32_t theirs = ((uint32_t)answer[0] << 24) | ((uint32_t)answer[1] << 16)
			| ((uint32_t)answer[2] << 8) | answer[3];
		if(theirs == mine) return (answer[4] == 'Y') ? 'Y' : 'N';
	}
}

/* The certificate's subject CN as UTF-8 (caller frees), or NULL. */
static char *common_name(struct mosquitto *client)
{
	X509 *cert = mosquitto_client_certificate(client);
	if(!cert) return NULL;
	char *out = NULL;
	X509_NAME *name = X509_get_subject_name(cert);
	int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	if(i >= 0){
		ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		unsigned char *utf8 = NULL;
		int n = data ? ASN1_STRING_to_UTF8(&utf8, data) : -1;
		if(n > 0 && memchr(utf8, 0, (size_t)n) == NULL){
			out = malloc((size_t)n + 1);
			if(out){
				memcpy(out, utf8, (size_t)n);
				out[n] = '\0';
			}
		}
		OPENSSL_free(utf8);
	}
	X509_free(cert);
	return out;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)userdata;
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *client_id = mosquitto_client_id(ed->client);
	char *cn = common_name(ed->client);
	if(!cn || !client_id){
		free(cn);
		return MOSQ_ERR_AUTH;
	}
	const char *username = mosquitto_client_username(ed->client);
	if(username && !strcmp(username, cn) && *granted_find(cn, client_id)){
		free(cn);  /* a reload's check of a client that is connected already */
		return MOSQ_ERR_SUCCESS;
	}
	char verdict = ask(cn, client_id);
	int rc = MOSQ_ERR_AUTH;
	if(verdict == 'Y'){
		if(mosquitto_set_username(ed->client, cn) == MOSQ_ERR_SUCCESS){
			granted_add(cn, client_id);
			rc = MOSQ_ERR_SUCCESS;
		}
	}else if(verdict == 0){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "iot-jobs-local: no iot:Connect answer for %s; refused", cn);
	}
	free(cn);
	return rc;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)userdata;
	struct mosquitto_evt_disconnect *ed = event_data;
	const char *username = mosquitto_client_username(ed->client);
	const char *client_id = mosquitto_client_id(ed->client);
	if(username && client_id) granted_remove(username, client_id);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *opts, int opt_count)
{
	(void)userdata;
	plugin_id = identifier;
	for(int i = 0; i < opt_count; i++){
		if(!strcmp(opts[i].key, "socket_fd")) service_fd = atoi(opts[i].value);
		else if(!strcmp(opts[i].key, "timeout_ms")) timeout_ms = atoi(opts[i].value);
		else if(!strcmp(opts[i].key, "acl_fd")) acl_fd = atoi(opts[i].value);
	}
	if(service_fd < 0){
		mosquitto_log_printf(MOSQ_LOG_ERR, "iot-jobs-local: plugin_opt_socket_fd is missing");
		return MOSQ_ERR_INVAL;
	}
	int rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, NULL);
	}
	if(rc == MOSQ_ERR_SUCCESS && acl_fd >= 0){
		rc = acl_load();
		if(rc == MOSQ_ERR_SUCCESS){
			rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
		}
		pthread_t reader;
		if(rc == MOSQ_ERR_SUCCESS && pthread_create(&reader, NULL, acl_reader, NULL) == 0){
			pthread_detach(reader);
		}else if(rc == MOSQ_ERR_SUCCESS){
			mosquitto_log_printf(MOSQ_LOG_ERR, "iot-jobs-local: could not start the ACL feed's thread");
			rc = MOSQ_ERR_UNKNOWN;
		}
	}
	return rc;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	(void)userdata;
	(void)opts;
	(void)opt_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
	if(acl_fd >= 0) mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
}
