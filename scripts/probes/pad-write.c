// Page-cache write cost of back-to-back writes, optionally padded with zeros to the next
// PAD_KIB boundary in the same pwritev (bench/RESULTS.md (20), a lever that lost in the node).
//   cc -O2 -o /tmp/pad scripts/probes/pad-write.c; taskset -c 0 /tmp/pad FILE MIB WRITE_BYTES PAD_KIB
// (inside the full memory cgroup: scripts/bench-lib.sh memcg_enter)
// write W-byte records back to back; with PAD>0, each write also writes zeros up to the next PAD boundary
// (one pwritev: data + zeros), the next write starting at the data's end (over the zeros).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
static double tcpu(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int c,char**v){
  long total=atol(v[2])<<20,w=atol(v[3]),pad=atol(v[4])<<10;
  char*buf=aligned_alloc(4096,8<<20),*zero=aligned_alloc(4096,8<<20);
  memset(buf,1,8<<20);memset(zero,0,8<<20);
  int fd=open(v[1],O_WRONLY|O_CREAT|O_TRUNC,0644);
  long pos=0;double s=tcpu();
  while(pos<total){
    struct iovec io[2]={{buf,w},{zero,0}};int n=1;
    if(pad){long end=pos+w;long up=(end+pad-1)/pad*pad;io[1].iov_len=up-end;n=io[1].iov_len?2:1;}
    long want=w+(n==2?io[1].iov_len:0);
    if(pwritev(fd,io,n,pos)!=want){perror("pwritev");return 1;}
    pos+=w;
  }
  double cpu=tcpu()-s;fsync(fd);
  printf("write %ld pad %ld KiB: %.3f CPU-s/GiB\n",w,pad>>10,cpu/(total/1073741824.0));
  return 0;
}
