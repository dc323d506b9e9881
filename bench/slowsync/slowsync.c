/*
 * An LD_PRELOAD shim for bench/run --slow-fsync MICROSECONDS: every fsync
 * and fdatasync of the process takes at least SLOWSYNC_US microseconds
 * (the real call, then a sleep for the rest), so the durable hub can be
 * measured as if on a slower disk than the one at hand. Nothing else
 * changes: the data is really synced. Linux, glibc; built by bench/run.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

static long floor_ns(void) {
  const char *value = getenv("SLOWSYNC_US");
  return value ? atol(value) * 1000L : 0;
}

static long now_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000000000L + now.tv_nsec;
}

/* Sleeps until `start` + the floor; the timer slack is lowered so that a
 * 100 µs sleep is not rounded up by the default 50 µs. */
static void pad(long start) {
  long left = floor_ns() - (now_ns() - start);
  if (left > 0) {
    prctl(PR_SET_TIMERSLACK, 1UL);
    struct timespec rest = {left / 1000000000L, left % 1000000000L};
    nanosleep(&rest, NULL);
  }
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  long start = now_ns();
  int result = real(fd);
  pad(start);
  return result;
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  long start = now_ns();
  int result = real(fd);
  pad(start);
  return result;
}
