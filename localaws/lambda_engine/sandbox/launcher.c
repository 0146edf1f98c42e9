/*
 * localaws sandbox launcher: build a Lambda execution environment's view of the world, then exec the runtime.
 *
 * The engine compiles this file once per server (cc -O2) and starts it with vfork/exec: forking the
 * server's Python process for a preexec function costs 10-15 ms on some machines, this costs well under
 * one. (The engine moves it into its cgroups from outside: see cgroups.Group.adopt.) It does, in order,
 * what sandbox/filesystem.py and sandbox/identity.py describe:
 *
 *   1. unshare mount, IPC, UTS and (with --pidns) PID namespaces; with --userns (a server that is not
 *      root) first a user namespace too, in which the server's uid and gid are 0 (so it may mount); with a
 *      PID namespace, fork: the child is pid 1 of the new namespace and this process waits for it and
 *      exits as it did;
 *   2. make "/" private, mount a tmpfs at --root, apply the --step list (bind, beneath: a folder opened
 *      inside a root without following links, then bind-mounted from its descriptor; tmpfs, symlink, dir), mount
 *      /proc (the namespace's own), remount /etc, /dev and the root read-only; with --userns, enter a
 *      second user namespace whose only uid and gid (--uid, --gid) are the first one's 0: every capability
 *      is gone at exec (the function is not root there) and setgroups is denied; chroot, chdir;
 *   3. with --nproc, set RLIMIT_NPROC (where no pids cgroup caps processes: see sandbox/limits.py), before
 *      the nested user namespace is made, so that the kernel counts it in that namespace;
 *   4. drop to --uid/--gid/--groups with no_new_privs, and exec the command after "--".
 *
 * A bind mount keeps the flags the kernel locks on its source in a user namespace (nosuid, nodev, noexec,
 * read-only, atime), read with statvfs: a remount that dropped one would fail with EPERM.
 *
 * Usage: launcher --root DIR [--pidns] [--userns] [--nproc N] --uid U --gid G [--groups G1,G2]
 *                 [--step KIND TARGET SOURCE RO DATA]... --chdir DIR -- COMMAND [ARG]...
 * Any failure prints "localaws-sandbox: <what>: <error>" on stderr and exits 127.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ITEMS 128

struct step { const char *kind, *target, *source, *data; int ro; };

static void die(const char *what, const char *detail) {
    fprintf(stderr, "localaws-sandbox: %s %s: %s\n", what, detail ? detail : "", strerror(errno));
    _exit(127);
}

static void mkdir_p(const char *path) {
    char buffer[4096];
    size_t n = strlen(path);
    if (n >= sizeof buffer) { errno = ENAMETOOLONG; die("path", path); }
    memcpy(buffer, path, n + 1);
    for (char *p = buffer + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buffer, 0755) != 0 && errno != EEXIST) die("mkdir", buffer);
            *p = '/';
        }
    }
    if (mkdir(buffer, 0755) != 0 && errno != EEXIST) die("mkdir", buffer);
}

static void make_parent(const char *path) {
    char buffer[4096];
    snprintf(buffer, sizeof buffer, "%s", path);
    char *slash = strrchr(buffer, '/');
    if (slash && slash != buffer) { *slash = 0; mkdir_p(buffer); }
}

static void remount(const char *target, unsigned long flags) {
    if (mount(NULL, target, NULL, MS_REMOUNT | flags, NULL) != 0) die("remount", target);
}

static unsigned long locked_flags(const char *target) {
    struct statvfs st;
    if (statvfs(target, &st) != 0) die("statvfs", target);
    unsigned long flags = 0;
    if (st.f_flag & ST_RDONLY) flags |= MS_RDONLY;
    if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
    return flags;
}

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) die("open", path);
    ssize_t n = (ssize_t)strlen(text);
    if (write(fd, text, n) != n) die("write", path);
    close(fd);
}

/* After unshare(CLONE_NEWUSER): map this process's uid/gid in the parent namespace (outer) to inner. */
static void map_ids(unsigned long inner_uid, unsigned long outer_uid, unsigned long inner_gid,
                    unsigned long outer_gid) {
    char line[64];
    write_file("/proc/self/setgroups", "deny");  /* required before an unprivileged gid_map */
    snprintf(line, sizeof line, "%lu %lu 1\n", inner_gid, outer_gid);
    write_file("/proc/self/gid_map", line);
    snprintf(line, sizeof line, "%lu %lu 1\n", inner_uid, outer_uid);
    write_file("/proc/self/uid_map", line);
}

/* The folder `relative` inside `root`, opened one component at a time with O_NOFOLLOW: a link anywhere on
 * the way (or `.`, `..`) ends the launch. The descriptor is what gets mounted, so what was checked is what
 * the function sees (an EFS access point's folder, which functions may have filled with links). */
static int open_beneath(const char *root, const char *relative) {
    const int flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(root, flags);
    if (fd < 0) die("open", root);
    if (!relative) return fd;
    char buffer[4096], *save = NULL;
    if (strlen(relative) >= sizeof buffer) { errno = ENAMETOOLONG; die("path", relative); }
    strcpy(buffer, relative);
    for (char *part = strtok_r(buffer, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        if (strcmp(part, ".") == 0 || strcmp(part, "..") == 0) { errno = EINVAL; die("path", relative); }
        int next = openat(fd, part, flags);
        if (next < 0) die("open beneath", relative);
        close(fd);
        fd = next;
    }
    return fd;
}

static void bind(const char *source, const char *target, const struct step *s) {
    struct stat st;
    if (stat(source, &st) != 0) die("stat", source);
    if (S_ISDIR(st.st_mode)) {
        mkdir_p(target);
    } else {
        make_parent(target);
        int fd = open(target, O_CREAT | O_WRONLY, 0644);
        if (fd < 0) die("create", target);
        close(fd);
    }
    if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) != 0) die("bind", target);
    unsigned long flags = MS_BIND | MS_NOSUID | locked_flags(target);
    if (s->ro) flags |= MS_RDONLY;
    if (strncmp(s->target, "/dev/", 5) != 0) flags |= MS_NODEV;
    remount(target, flags);
}

static void apply(const char *root, struct step *steps, int count) {
    char target[4096];
    unsigned long quiet = MS_NOSUID | MS_NODEV;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("private", "/");
    if (mount("tmpfs", root, "tmpfs", quiet, "size=1m,mode=755") != 0) die("mount root", root);
    for (int i = 0; i < count; i++) {
        struct step *s = &steps[i];
        snprintf(target, sizeof target, "%s%s", root, s->target);
        if (strcmp(s->kind, "symlink") == 0) {
            make_parent(target);
            if (symlink(s->source, target) != 0) die("symlink", target);
        } else if (strcmp(s->kind, "dir") == 0) {
            mkdir_p(target);
        } else if (strcmp(s->kind, "tmpfs") == 0) {
            mkdir_p(target);
            if (mount("tmpfs", target, "tmpfs", quiet, s->data) != 0) die("mount tmpfs", target);
            if (s->ro && strcmp(s->target, "/etc") != 0 && strcmp(s->target, "/dev") != 0)
                remount(target, MS_RDONLY | quiet);
        } else if (strcmp(s->kind, "beneath") == 0) {  /* source: the root; data: the folder inside it */
            int fd = open_beneath(s->source, s->data);
            char proc[64];
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
            bind(proc, target, s);
            close(fd);
        } else {  /* bind */
            bind(s->source, target, s);
        }
    }
}

static void finish_root(const char *root, int own_proc) {
    char target[4096];
    if (own_proc) {
        snprintf(target, sizeof target, "%s/proc", root);
        if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die("mount", target);
    }
    snprintf(target, sizeof target, "%s/etc", root);
    remount(target, MS_RDONLY | MS_NOSUID | MS_NODEV);
    snprintf(target, sizeof target, "%s/dev", root);
    remount(target, MS_RDONLY | MS_NOSUID | MS_NODEV);
    remount(root, MS_RDONLY | MS_NOSUID | MS_NODEV);
}

int main(int argc, char **argv) {
    const char *root = NULL, *dir = "/", *groups = "";
    struct step steps[MAX_ITEMS];
    int nsteps = 0, pidns = 0, userns = 0, i = 1;
    long nproc = -1;
    uid_t uid = 993;
    gid_t gid = 990;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) root = argv[++i];
        else if (strcmp(argv[i], "--chdir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--uid") == 0 && i + 1 < argc) uid = (uid_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--gid") == 0 && i + 1 < argc) gid = (gid_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc) groups = argv[++i];
        else if (strcmp(argv[i], "--nproc") == 0 && i + 1 < argc) nproc = atol(argv[++i]);
        else if (strcmp(argv[i], "--pidns") == 0) pidns = 1;
        else if (strcmp(argv[i], "--userns") == 0) userns = 1;
        else if (strcmp(argv[i], "--step") == 0 && i + 5 < argc && nsteps < MAX_ITEMS) {
            steps[nsteps].kind = argv[i + 1];
            steps[nsteps].target = argv[i + 2];
            steps[nsteps].source = argv[i + 3];
            steps[nsteps].ro = strcmp(argv[i + 4], "1") == 0;
            steps[nsteps].data = strcmp(argv[i + 5], "-") == 0 ? NULL : argv[i + 5];  /* "-": none */
            nsteps++;
            i += 5;
        } else { errno = EINVAL; die("argument", argv[i]); }
    }
    if (!root || i + 1 >= argc) { errno = EINVAL; die("usage", "--root DIR ... -- COMMAND"); }
    char **command = &argv[i + 1];

    uid_t server_uid = getuid();
    gid_t server_gid = getgid();
    int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (pidns ? CLONE_NEWPID : 0);
    if (unshare(flags | (userns ? CLONE_NEWUSER : 0)) != 0) die("unshare", "");
    if (userns) map_ids(0, server_uid, 0, server_gid);
    if (pidns) {
        pid_t child = fork();
        if (child < 0) die("fork", "");
        if (child > 0) {  /* outside the namespace: wait, then exit as pid 1 did */
            int status;
            while (waitpid(child, &status, 0) < 0) if (errno != EINTR) die("waitpid", "");
            if (WIFSIGNALED(status)) {
                signal(WTERMSIG(status), SIG_DFL);
                kill(getpid(), WTERMSIG(status));
            }
            _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);  /* pid 1 ends with its launcher */
    }
    apply(root, steps, nsteps);
    finish_root(root, pidns);
    if (nproc > 0) {
        struct rlimit limit = { (rlim_t)nproc, (rlim_t)nproc };
        if (setrlimit(RLIMIT_NPROC, &limit) != 0) die("setrlimit", "RLIMIT_NPROC");
    }
    if (userns) {  /* before chroot: the kernel refuses a user namespace to a chrooted process */
        if (unshare(CLONE_NEWUSER) != 0) die("unshare", "user");
        map_ids(uid, 0, gid, 0);
    }
    if (chroot(root) != 0) die("chroot", root);
    if (chdir(dir) != 0) die("chdir", dir);

    gid_t list[MAX_ITEMS];
    int ngroups = 0;
    for (char *copy = strdup(groups), *token = strtok(copy, ","); token && ngroups < MAX_ITEMS; token = strtok(NULL, ","))
        list[ngroups++] = (gid_t)atoi(token);
    if (!userns && setgroups(ngroups, list) != 0) die("setgroups", "");  /* denied in a user namespace */
    if (setresgid(gid, gid, gid) != 0) die("setresgid", "");
    if (setresuid(uid, uid, uid) != 0) die("setresuid", "");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs", "");
    execv(command[0], command);
    die("exec", command[0]);
    return 127;
}
