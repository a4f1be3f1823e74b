// SPDX-License-Identifier: GPL-2.0-only
/*
 * mmbench: the kernel-core benchmark's syscall sequence on this machine's real kernel, for the
 * model/native ratios of `mmcheck bench` (issue 5). Built at run time with gcc, like the
 * conformance oracle.
 *
 *   mmbench BYTES REPEATS
 *
 * Each repeat: mmap BYTES of private anonymous memory; write-fault every page in (timed); store one
 * non-zero word per page (untimed, as the model's benchmark does); fork with everything touched,
 * the child exiting at once (the parent's fork() is timed, the child's exit and reaping are not);
 * munmap the whole mapping (timed). One line per repeat on stdout:
 *
 *   run PAGES TOUCH_NS TOUCH_CPU_NS FORK_NS MUNMAP_NS FORK_CPU_NS MUNMAP_CPU_NS
 *
 * The _CPU_NS figures are the process's CPU time (user + system) over the same span as the wall
 * figure before them: on a shared machine they do not count the time other processes had the CPU.
 * Exit status 0, or 1 with a message on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int fail(const char *what)
{
	fprintf(stderr, "mmbench: %s: %s\n", what, strerror(errno));
	return 1;
}

static int run_once(size_t bytes)
{
	size_t pages = bytes / 4096, i;
	volatile uint64_t *p;
	int64_t t0, c0, touch, touch_cpu, fork_ns, fork_cpu, munmap_ns, munmap_cpu;
	int status;
	pid_t pid;

	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return fail("mmap");

	/* First touch: a store of 0 faults the page in, as the model's benchmark does. */
	c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	t0 = now_ns(CLOCK_MONOTONIC);
	for (i = 0; i < pages; i++)
		p[i * 512] = 0;
	touch = now_ns(CLOCK_MONOTONIC) - t0;
	touch_cpu = now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;

	for (i = 0; i < pages; i++)
		p[i * 512] = i + 1;

	c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	t0 = now_ns(CLOCK_MONOTONIC);
	pid = fork();
	if (pid == 0)
		_exit(0);
	fork_ns = now_ns(CLOCK_MONOTONIC) - t0;
	fork_cpu = now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
	if (pid < 0)
		return fail("fork");
	if (waitpid(pid, &status, 0) != pid)
		return fail("waitpid");

	c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	t0 = now_ns(CLOCK_MONOTONIC);
	if (munmap((void *)p, bytes) != 0)
		return fail("munmap");
	munmap_ns = now_ns(CLOCK_MONOTONIC) - t0;
	munmap_cpu = now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;

	printf("run %zu %lld %lld %lld %lld %lld %lld\n", pages, (long long)touch, (long long)touch_cpu,
	       (long long)fork_ns, (long long)munmap_ns, (long long)fork_cpu, (long long)munmap_cpu);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long bytes;
	int repeats, r;

	if (argc != 3) {
		fprintf(stderr, "usage: mmbench BYTES REPEATS\n");
		return 2;
	}
	bytes = strtoull(argv[1], NULL, 0);
	repeats = atoi(argv[2]);
	if (bytes < 4096 || bytes % 4096 != 0 || repeats < 1) {
		fprintf(stderr, "mmbench: BYTES must be a positive multiple of 4096, REPEATS at least 1\n");
		return 2;
	}
	for (r = 0; r < repeats; r++)
		if (run_once(bytes))
			return 1;
	return 0;
}
