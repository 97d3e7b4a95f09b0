#include <stdio.h>
int main(void)
{
    puts("awf-proxy " AWF_VERSION_STRING);
    return 0;
}
