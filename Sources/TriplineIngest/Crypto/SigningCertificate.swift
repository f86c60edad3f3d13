internal import COpenSSL

/// An X.509 certificate's public key, used to verify RSA PKCS#1 v1.5 signatures (Amazon SNS messages).
public final class SigningCertificate: @unchecked Sendable {
    // Immutable after init; OpenSSL allows concurrent verification with one EVP_PKEY.
    private let key: OpaquePointer

    /// Reads a PEM certificate.
    /// - Throws: ``SigningCertificate/Failure`` when `pem` holds no readable certificate or public key.
    public init(pem: [UInt8]) throws(Failure) {
        guard !pem.isEmpty, pem.count < 1 << 20 else { throw Failure("the certificate is empty or too large") }
        let certificate: OpaquePointer? = pem.withUnsafeBufferPointer { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        }
        ERR_clear_error()
        guard let certificate else { throw Failure("not a PEM X.509 certificate") }
        defer { X509_free(certificate) }
        guard let key = X509_get_pubkey(certificate) else {
            ERR_clear_error()
            throw Failure("the certificate has no usable public key")
        }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    /// Whether `signature` is a valid RSASSA-PKCS1-v1_5 signature of `message` with `digest` under this key.
    public func verify(signature: [UInt8], message: [UInt8], digest: DigestAlgorithm) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer {
            EVP_MD_CTX_free(context)
            ERR_clear_error()
        }
        guard EVP_DigestVerifyInit(context, nil, digest.evp, nil, key) == 1 else { return false }
        return signature.withUnsafeBufferPointer { signatureBuffer in
            message.withUnsafeBufferPointer { messageBuffer in
                EVP_DigestVerify(context, signatureBuffer.baseAddress, signatureBuffer.count, messageBuffer.baseAddress, messageBuffer.count) == 1
            }
        }
    }

    /// Why a certificate could not be read.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
