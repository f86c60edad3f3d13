#ifndef TRIPLINE_COPENSSL_SHIM_H
#define TRIPLINE_COPENSSL_SHIM_H
// The parts of OpenSSL's libcrypto that webhook verification uses: HMAC, digests, X.509 certificates and RSA
// signature verification.
#define OPENSSL_NO_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/err.h>
#endif
