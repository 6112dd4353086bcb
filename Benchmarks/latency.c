#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <string.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  const char*root=argv[1]; int n=atoi(argv[2]); double*lat=malloc(n*sizeof(double));
  char done[4096],stage[4096],inbox[4096]; snprintf(done,sizeof done,"%s/Done",root);
  int fd=inotify_init1(0); inotify_add_watch(fd,done,IN_MOVED_TO|IN_CREATE);
  char buf[65536];
  for(int i=0;i<n;i++){
    snprintf(stage,sizeof stage,"%s/stage-%d.txt",root,i); snprintf(inbox,sizeof inbox,"%s/Inbox/lat-%d.txt",root,i);
    int f=open(stage,O_CREAT|O_WRONLY,0644); write(f,"x\n",2); close(f);
    double t0=now(); rename(stage,inbox);
    for(;;){ ssize_t len=read(fd,buf,sizeof buf); int found=0; for(char*p=buf;p<buf+len;){struct inotify_event*e=(void*)p; if(e->len&&strstr(e->name,"lat-")) found=1; p+=sizeof(*e)+e->len;} if(found)break; }
    lat[i]=now()-t0; usleep(20000);
  }
  qsort(lat,n,sizeof(double),cmp);
  printf("latency n=%d p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms\n",n,lat[n/2],lat[n*9/10],lat[n*99/100],lat[n-1]);
}
