// Thin C wrappers for what Swift cannot import: OpenSSL's function-like macros, a
// packed epoll_event, and callbacks that must not capture Swift context.
#ifndef CGATEWAYSHIMS_H
#define CGATEWAYSHIMS_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/ec.h>
#include <stdint.h>
#include <stddef.h>

// epoll_event is packed on x86_64; Swift's import of packed structs is not to be relied
// on, so readiness crosses the boundary in this plain struct instead.
typedef struct {
    uint64_t token;
    uint32_t events;
} gw_event;

enum {
    GW_EV_READ = 1u,
    GW_EV_WRITE = 4u,
    GW_EV_ERROR = 8u,
    GW_EV_HUP = 16u,
};

int gw_epoll_create(void);
int gw_epoll_add(int epfd, int fd, uint64_t token, int want_write);
int gw_epoll_mod(int epfd, int fd, uint64_t token, int want_write);
int gw_epoll_del(int epfd, int fd);
int gw_epoll_wait(int epfd, gw_event *out, int max, int64_t timeout_ns);

int gw_set_nonblocking(int fd);
int gw_set_nodelay(int fd);

/// Lowers the calling thread's scheduling priority to `nice` (0 = unchanged; lowering
/// needs no privilege). 0 or -1 with errno.
int gw_lower_thread_priority(int nice);
/// Names the calling thread for ps, top -H and perf (the kernel keeps 15 bytes).
int gw_name_thread(const char *name);
/// How late the calling thread's sleeps may end so that the kernel can batch wakeups
/// (50 µs by default); a load generator that sleeps until each send wants about none.
int gw_set_timer_slack(unsigned long nanoseconds);
int gw_listen_tcp(const char *host, int port, int backlog, int *out_port, int *out_errno);
int gw_connect_tcp(const char *host, int port, int *out_errno);
int gw_socket_error(int fd);
int gw_accept(int fd);
int gw_eventfd_create(int epfd);
void gw_eventfd_ring(int fd);
void gw_eventfd_drain(int fd);

long gw_ssl_ctx_set_min_proto(SSL_CTX *ctx, int version);
long gw_ssl_ctx_set_max_proto(SSL_CTX *ctx, int version);
long gw_ssl_ctx_set_mode(SSL_CTX *ctx, long mode);
uint64_t gw_ssl_ctx_set_options(SSL_CTX *ctx, uint64_t options);
long gw_ssl_ctx_set_groups(SSL_CTX *ctx, const char *list);
long gw_ssl_set_sni(SSL *ssl, const char *name);
void gw_ssl_ctx_set_read_ahead(SSL_CTX *ctx);
void gw_ssl_ctx_server_alpn_http11(SSL_CTX *ctx);
int gw_ssl_ctx_client_alpn_http11(SSL_CTX *ctx);

uint64_t gw_ssl_mode_defaults(void);
uint64_t gw_ssl_op_defaults(void);
int gw_tls1_2_version(void);
int gw_tls1_3_version(void);

// Writes the first SAN URI of the peer's verified certificate into buf; returns its
// length, 0 when there is none, -1 when buf is too small.
int gw_peer_san_uri(SSL *ssl, char *buf, size_t len);
int gw_cert_add_san_uri(X509 *cert, X509 *issuer, const char *uri, int is_ca);
EVP_PKEY *gw_generate_p256(void);

// r = sum(scalars[i] * points[i]) in one interleaved pass (shared doublings). OpenSSL 3
// deprecates EC_POINTs_mul without a replacement; it is the only public multi-scalar
// multiplication, and the VOPRF verifier's composites need it. Not constant time: only
// for public scalars.
int gw_ec_points_mul(const EC_GROUP *group, EC_POINT *r, size_t num, const EC_POINT *const *points,
                     const BIGNUM *const *scalars, BN_CTX *ctx);

// SHA-256 of head ‖ body into out (32 bytes), through one digest OpenSSL fetched once:
// SHA256() fetches the algorithm by name on every call (a lock and a lookup, about a
// third of hashing a 400-byte audit leaf), and the two parts spare callers a
// concatenated copy. 1 on success.
int gw_sha256(const void *head, size_t head_len, const void *body, size_t body_len, unsigned char *out);

// Fixes glibc's mmap threshold at `mmap_bytes` (turning off its dynamic raising), so that
// large blocks live in their own mappings and go back to the system when freed, and its
// trim threshold at `trim_bytes`: free memory at the top of a heap is returned to the
// system only past it. Nonzero when both were taken.
int gw_fix_malloc_thresholds(int mmap_bytes, int trim_bytes);

// Puts `length` bytes at `path` (mode `mode`) so that a crash or a power cut leaves
// either no file or the old one, or the whole new one, never an empty or half-written
// file: the bytes go to a fresh path.tmp, are fsynced, and take the name, and the
// directory is fsynced so that the name survives too. With `replace` the new file is
// renamed over any old one; without, it is linked to the name, which fails with EEXIST
// when the path exists (an atomic create: of two writers, one wins). 0 on success, else
// the errno of the step that failed.
int gw_publish_file(const char *path, const void *bytes, size_t length, unsigned mode, int replace);

// fsyncs the directory `path`, so that the names made, renamed or removed in it survive a
// power cut. 0 on success, else the errno of the step that failed.
int gw_sync_directory(const char *path);

#endif
