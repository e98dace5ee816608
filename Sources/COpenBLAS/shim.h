#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H

#include <stddef.h>
#include <cblas.h>  // libopenblas-dev: CBLAS, openblas_set_num_threads, openblas_get_config

// LAPACK through the Fortran symbols libopenblas itself exports, so no liblapacke is needed (and the same
// calls exist in Accelerate). The trailing size_t is gfortran's hidden CHARACTER length: always 1 here.
void dpotrf_(const char *uplo, const blasint *n, double *a, const blasint *lda, blasint *info, size_t uplo_len);
void dpotrs_(const char *uplo, const blasint *n, const blasint *nrhs, const double *a, const blasint *lda,
             double *b, const blasint *ldb, blasint *info, size_t uplo_len);
void dpotri_(const char *uplo, const blasint *n, double *a, const blasint *lda, blasint *info, size_t uplo_len);

#endif
