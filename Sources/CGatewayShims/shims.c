#define _GNU_SOURCE
#include "CGatewayShims.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

// Edge-triggered: the loop must drain a ready socket until EAGAIN, and in return one
// readiness costs one wakeup however long the peer keeps the socket busy.
static uint32_t interest(int want_write) {
    return EPOLLIN | EPOLLRDHUP | EPOLLET | (want_write ? EPOLLOUT : 0);
}

int gw_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int gw_epoll_add(int epfd, int fd, uint64_t token, int want_write) {
    struct epoll_event ev = {.events = interest(want_write), .data.u64 = token};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int gw_epoll_mod(int epfd, int fd, uint64_t token, int want_write) {
    struct epoll_event ev = {.events = interest(want_write), .data.u64 = token};
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}

int gw_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

// The wait is given in nanoseconds (epoll_pwait2, Linux 5.11): epoll_wait counts in
// whole milliseconds, so timed work (an open-loop benchmark's sends, 90 µs apart at
// 11 000/s) would run up to a millisecond late. A kernel without it gets the wait
// rounded up to the next millisecond, never shorter than asked.
int gw_epoll_wait(int epfd, gw_event *out, int max, int64_t timeout_ns) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    struct timespec wait = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    int n;
    do {
        n = epoll_pwait2(epfd, evs, max, &wait, NULL);
        if (n < 0 && errno == ENOSYS) n = epoll_wait(epfd, evs, max, (int)((timeout_ns + 999999) / 1000000));
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events, r = 0;
        if (e & (EPOLLIN | EPOLLRDHUP)) r |= GW_EV_READ;
        if (e & EPOLLOUT) r |= GW_EV_WRITE;
        if (e & EPOLLERR) r |= GW_EV_ERROR;
        if (e & EPOLLHUP) r |= GW_EV_HUP;
        out[i].token = evs[i].data.u64;
        out[i].events = r;
    }
    return n;
}

int gw_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int gw_set_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// On Linux a nice value belongs to a thread, named by its tid, not to the process.
int gw_lower_thread_priority(int nice) {
    return nice == 0 ? 0 : setpriority(PRIO_PROCESS, (id_t)gettid(), nice);
}

int gw_name_thread(const char *name) {
    char shortened[16];
    strncpy(shortened, name, sizeof shortened - 1);
    shortened[sizeof shortened - 1] = 0;
    return pthread_setname_np(pthread_self(), shortened);
}

int gw_set_timer_slack(unsigned long nanoseconds) {
    return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0);
}

static int resolve(const char *host, int port, int passive, struct addrinfo **res) {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    return getaddrinfo(host, service, &hints, res);
}

int gw_listen_tcp(const char *host, int port, int backlog, int *out_port, int *out_errno) {
    struct addrinfo *res = NULL;
    if (resolve(host, port, 1, &res) != 0 || res == NULL) {
        *out_errno = EADDRNOTAVAIL;
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (res->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, backlog) != 0) goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *out_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    freeaddrinfo(res);
    return fd;
fail:
    *out_errno = errno;
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return -1;
}

// Starts a non-blocking connect; completion is reported by writability.
int gw_connect_tcp(const char *host, int port, int *out_errno) {
    struct addrinfo *res = NULL;
    if (resolve(host, port, 0, &res) != 0 || res == NULL) {
        *out_errno = EHOSTUNREACH;
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *out_errno = errno;
        freeaddrinfo(res);
        return -1;
    }
    gw_set_nodelay(fd);
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
        *out_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* A connect to a loopback port in the ephemeral range where nothing listens can be
 * given that very port as its own and connect to itself (TCP simultaneous open). It
 * would then read its own request as the answer and hold the port a restarting server
 * wants (seen: a gathering node retrying its national peer made the peer's restart fail
 * with EADDRINUSE). Such a socket is reported as refused, as the connect would have been. */
static int gw_is_self_connected(int fd) {
    struct sockaddr_storage here, there;
    socklen_t a = sizeof here, b = sizeof there;
    if (getsockname(fd, (struct sockaddr *)&here, &a) != 0 || getpeername(fd, (struct sockaddr *)&there, &b) != 0) return 0;
    return a == b && memcmp(&here, &there, a) == 0;
}

int gw_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    if (err == 0 && gw_is_self_connected(fd)) return ECONNREFUSED;
    return err;
}

long gw_ssl_ctx_set_min_proto(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }
long gw_ssl_ctx_set_max_proto(SSL_CTX *ctx, int v) { return SSL_CTX_set_max_proto_version(ctx, v); }
long gw_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
uint64_t gw_ssl_ctx_set_options(SSL_CTX *ctx, uint64_t o) { return SSL_CTX_set_options(ctx, o); }
long gw_ssl_ctx_set_groups(SSL_CTX *ctx, const char *list) { return SSL_CTX_set1_groups_list(ctx, list); }
long gw_ssl_set_sni(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
int gw_tls1_2_version(void) { return TLS1_2_VERSION; }
int gw_tls1_3_version(void) { return TLS1_3_VERSION; }

// Partial writes plus a movable buffer let the connection hand SSL_write whatever is
// left of its output after a WANT_WRITE. SSL_MODE_RELEASE_BUFFERS is left off: it frees
// and reallocates both record buffers on every request; connections instead release
// them from their tick once they sit idle.
uint64_t gw_ssl_mode_defaults(void) {
    return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
}

// A peer that drops TCP without close_notify is treated as EOF: HTTP framing, not the
// TLS alert, says whether a message was complete.
uint64_t gw_ssl_op_defaults(void) {
    return SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
           SSL_OP_CIPHER_SERVER_PREFERENCE;
}

static const unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

static int select_http11(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                         const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    (void)arg;
    unsigned char *chosen = NULL;
    if (SSL_select_next_proto(&chosen, outlen, http11, sizeof http11, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

void gw_ssl_ctx_server_alpn_http11(SSL_CTX *ctx) { SSL_CTX_set_alpn_select_cb(ctx, select_http11, NULL); }
int gw_ssl_ctx_client_alpn_http11(SSL_CTX *ctx) { return SSL_CTX_set_alpn_protos(ctx, http11, sizeof http11); }

int gw_peer_san_uri(SSL *ssl, char *buf, size_t len) {
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK) return 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (names == NULL) return 0;
    int result = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_URI) continue;
        int n = ASN1_STRING_length(name->d.uniformResourceIdentifier);
        if ((size_t)n >= len) {
            result = -1;
            break;
        }
        memcpy(buf, ASN1_STRING_get0_data(name->d.uniformResourceIdentifier), (size_t)n);
        buf[n] = 0;
        result = n;
        break;
    }
    GENERAL_NAMES_free(names);
    return result;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) return 0;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

// Extensions for a dev CA (is_ca) or a leaf usable as both TLS client and server.
int gw_cert_add_san_uri(X509 *cert, X509 *issuer, const char *uri, int is_ca) {
    if (is_ca) {
        return add_ext(cert, issuer, NID_basic_constraints, "critical,CA:TRUE") &&
               add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
               add_ext(cert, issuer, NID_subject_key_identifier, "hash");
    }
    char san[512];
    if (snprintf(san, sizeof san, "URI:%s,DNS:localhost,IP:127.0.0.1,IP:::1", uri) >= (int)sizeof san)
        return 0;
    return add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
           add_ext(cert, issuer, NID_key_usage, "critical,digitalSignature") &&
           add_ext(cert, issuer, NID_ext_key_usage, "serverAuth,clientAuth") &&
           add_ext(cert, issuer, NID_authority_key_identifier, "keyid") &&
           add_ext(cert, issuer, NID_subject_alt_name, san);
}

EVP_PKEY *gw_generate_p256(void) { return EVP_EC_gen("P-256"); }

int gw_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

#include <sys/eventfd.h>

// The loop's doorbell: level-triggered, read interest only, drained on every ring.
int gw_eventfd_create(int epfd) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void gw_eventfd_ring(int fd) {
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one);
    (void)r;
}

void gw_eventfd_drain(int fd) {
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
}
void gw_ssl_ctx_set_read_ahead(SSL_CTX *ctx) { SSL_CTX_set_read_ahead(ctx, 1); }

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
int gw_ec_points_mul(const EC_GROUP *group, EC_POINT *r, size_t num, const EC_POINT *const *points,
                     const BIGNUM *const *scalars, BN_CTX *ctx) {
    return EC_POINTs_mul(group, r, NULL, num, (const EC_POINT **)points, (const BIGNUM **)scalars, ctx);
}
#pragma GCC diagnostic pop

int gw_fix_malloc_thresholds(int mmap_bytes, int trim_bytes) {
    return mallopt(M_MMAP_THRESHOLD, mmap_bytes) && mallopt(M_TRIM_THRESHOLD, trim_bytes);
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_fetched = PTHREAD_ONCE_INIT;
static void fetch_sha256(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

int gw_sha256(const void *head, size_t head_len, const void *body, size_t body_len, unsigned char *out) {
    pthread_once(&sha256_fetched, fetch_sha256);
    if (!sha256_md) return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex2(ctx, sha256_md, NULL) && EVP_DigestUpdate(ctx, head, head_len)
             && EVP_DigestUpdate(ctx, body, body_len) && EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
    return ok;
}

int gw_publish_file(const char *path, const void *bytes, size_t length, unsigned mode, int replace) {
    size_t path_length = strlen(path);
    char *temporary = malloc(path_length + 5);
    if (!temporary) return ENOMEM;
    snprintf(temporary, path_length + 5, "%s.tmp", path);
    // A crash may have left one, with any mode: O_TRUNC would keep that mode.
    unlink(temporary);
    int failure = 0;
    int fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) failure = errno;
    for (size_t done = 0; !failure && done < length;) {
        ssize_t n = write(fd, (const char *)bytes + done, length - done);
        if (n > 0) done += (size_t)n;
        else if (n == 0) failure = EIO;
        else if (errno != EINTR) failure = errno;
    }
    if (!failure && fsync(fd) != 0) failure = errno;
    if (fd >= 0) close(fd);
    if (!failure && (replace ? rename(temporary, path) : link(temporary, path)) != 0) failure = errno;
    if (failure || !replace) unlink(temporary);
    free(temporary);
    if (failure) return failure;
    // The directory holding the name: everything before the last '/', or ".".
    const char *slash = strrchr(path, '/');
    char *directory = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!directory) return ENOMEM;
    int synced = gw_sync_directory(directory);
    free(directory);
    return synced;
}

int gw_sync_directory(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int synced = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return synced;
}
