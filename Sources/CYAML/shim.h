#ifndef LKJWT_CYAML_SHIM_H
#define LKJWT_CYAML_SHIM_H
#include <yaml.h>
#endif
