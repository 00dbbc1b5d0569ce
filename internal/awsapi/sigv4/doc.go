// Package sigv4 verifies AWS Signature Version 4 on requests as received:
// header-signed requests (Authorization: AWS4-HMAC-SHA256 ...), presigned
// query strings (X-Amz-Signature and friends) and S3's signed aws-chunked
// bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD). S3 URLs presigned with
// signature version 2, which boto3 still makes by default, are verified
// too (VerifyPresignedV2).
//
// The canonical request is computed from the request exactly as it arrived
// — the raw escaped path, the raw query, the signed header fields in the
// order received — rather than by re-signing a reconstructed request, which
// would re-canonicalise it and could differ from what the client signed.
// The path is taken as sent for S3 and escaped once more for every other
// service, as the AWS signers do.
//
// Verification costs no allocations on the hot path (a header-signed
// request with a body in memory): signing keys are derived once per
// (secret, date, region, service) and cached, and the canonical request is
// built in pooled scratch space. The package knows nothing about AWS wire
// formats; its errors carry a Code that internal/awsapi turns into each
// protocol's error code and status.
package sigv4
