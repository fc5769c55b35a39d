#include "CSQLiteShims.h"

#include <pthread.h>
#include <sqlite3.h>

// SQLite's count of the memory it holds, turned off.
//
// With the count on (SQLite's default), every sqlite3_malloc and sqlite3_free of every
// connection in the process takes one global mutex to update it. The node's event loops
// run token lookups' queries side by side on their own threads, beside the writer's, so
// each allocation of one could wait for another's: under unaudited lookups on the 1 M
// node, pthread_mutex_lock fell from 1.15 % to 0.30 % of the node's CPU with the count
// off (Benchmarks/RESULTS.md, index, session 31). Nothing here reads the count
// (sqlite3_memory_used, sqlite3_status), and a soft heap limit, which needs it, is never
// set.
//
// Like the page cache, this must come before anything starts SQLite.

static int result = SQLITE_ERROR;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void turn_off_once(void) { result = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

int gw_sqlite_memory_status_off(void) {
    pthread_once(&once, turn_off_once);
    return result;
}

__attribute__((constructor)) static void turn_off_at_load(void) { gw_sqlite_memory_status_off(); }
