#include "CSQLiteShims.h"

#include <pthread.h>
#include <sqlite3.h>

// SQLite's own page cache, with one call skipped when it can do nothing.
//
// At the end of every write transaction the pager truncates its cache to the database's
// size. SQLite's cache does this cheaply while no page it ever held lies beyond the end;
// otherwise it walks every hash bucket and every page it holds. And it always has held
// one there after a B-tree rebalance: to reorder the new pages of a split, btree.c swaps
// their numbers through a temporary one, the page after the 1 GiB lock-byte page. So in a
// database under 1 GiB every transaction with a split (most of the read queue's, whose
// keys are random UIDs) ended with a walk of the writer's whole cache: 6 % of the node's
// CPU under the read-cycle benchmark (Benchmarks/RESULTS.md, session 23).
//
// The wrapper knows where its pages are. What must stay true, for each cache: every page
// it holds has a key below `high`, or `moved` is above zero. A page comes in through a
// fetch (which raises `high` past its key) or a rekey (which counts it in `moved` when it
// lands at or beyond `high`), so a truncation to a limit at or beyond `high` with nothing
// counted has nothing to drop and is skipped. Counts may run high (a page counted may be
// dropped or evicted uncounted); that only lets a truncation through.
typedef struct {
    sqlite3_pcache *inner;
    unsigned high;
    unsigned moved;
} Cache;

static sqlite3_pcache_methods2 base;

static int cache_init(void *arg) { return base.xInit(arg); }
static void cache_shutdown(void *arg) { base.xShutdown(arg); }

static sqlite3_pcache *cache_create(int page_size, int extra_size, int purgeable) {
    Cache *c = sqlite3_malloc(sizeof(Cache));
    if (c == NULL) return NULL;
    c->inner = base.xCreate(page_size, extra_size, purgeable);
    if (c->inner == NULL) {
        sqlite3_free(c);
        return NULL;
    }
    c->high = 0;
    c->moved = 0;
    return (sqlite3_pcache *)c;
}

static Cache *of(sqlite3_pcache *p) { return (Cache *)p; }

static void cache_size(sqlite3_pcache *p, int pages) { base.xCachesize(of(p)->inner, pages); }
static int cache_page_count(sqlite3_pcache *p) { return base.xPagecount(of(p)->inner); }

static sqlite3_pcache_page *cache_fetch(sqlite3_pcache *p, unsigned key, int create) {
    sqlite3_pcache_page *page = base.xFetch(of(p)->inner, key, create);
    if (page != NULL && key >= of(p)->high) of(p)->high = key + 1;
    return page;
}

static void cache_unpin(sqlite3_pcache *p, sqlite3_pcache_page *page, int discard) {
    base.xUnpin(of(p)->inner, page, discard);
}

static void cache_rekey(sqlite3_pcache *p, sqlite3_pcache_page *page, unsigned old_key, unsigned new_key) {
    Cache *c = of(p);
    base.xRekey(c->inner, page, old_key, new_key);
    if (old_key >= c->high && c->moved > 0) c->moved -= 1;
    if (new_key >= c->high) c->moved += 1;
}

static void cache_truncate(sqlite3_pcache *p, unsigned limit) {
    Cache *c = of(p);
    if (limit >= c->high && c->moved == 0) return;
    base.xTruncate(c->inner, limit);
    if (limit < c->high) {
        c->high = limit;
        c->moved = 0;
    }
}

static void cache_destroy(sqlite3_pcache *p) {
    base.xDestroy(of(p)->inner);
    sqlite3_free(p);
}

static void cache_shrink(sqlite3_pcache *p) { base.xShrink(of(p)->inner); }

static int installed = SQLITE_ERROR;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static sqlite3_pcache_methods2 wrapper;

static void install_once(void) {
    installed = sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &base);
    if (installed != SQLITE_OK) return;
    wrapper = (sqlite3_pcache_methods2){
        .iVersion = 2, .pArg = base.pArg, .xInit = cache_init, .xShutdown = cache_shutdown, .xCreate = cache_create,
        .xCachesize = cache_size, .xPagecount = cache_page_count, .xFetch = cache_fetch, .xUnpin = cache_unpin,
        .xRekey = cache_rekey, .xTruncate = cache_truncate, .xDestroy = cache_destroy, .xShrink = cache_shrink,
    };
    installed = sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapper);
}

int gw_sqlite_page_cache_install(void) {
    pthread_once(&once, install_once);
    return installed;
}

const sqlite3_pcache_methods2 *gw_sqlite_page_cache_methods(void) {
    return gw_sqlite_page_cache_install() == SQLITE_OK ? &wrapper : NULL;
}

// At load, before any code of the process can have started SQLite.
__attribute__((constructor)) static void install_at_load(void) { gw_sqlite_page_cache_install(); }
