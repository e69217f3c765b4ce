/*
 * tests/unit/crypto_vectors.h - PUBLISHED known-answer test vectors for vmseal.
 *
 * Every value in this file is copied from a public standard or from the official test-vector
 * files of a standards body (IETF RFCs, NIST CAVP, IEEE P1619, the GCM specification). None
 * was produced by running vmseal or OpenSSL. Each vector carries a comment naming its exact
 * source (document + section / CAVP file + group + COUNT / IEEE vector number).
 *
 * DO NOT EDIT these values. They are reference data: if any byte here is altered, the tests
 * that consume this file MUST fail. A test that still passes after a vector is changed is a
 * broken test. To add coverage, add new vectors with their own citation; never "fix" an
 * existing one to match the code.
 *
 * Each vector was cross-checked (both directions where applicable) against the system OpenSSL
 * 3.0 library / command line and, for hashes, MACs and KDFs, also against Python's standard
 * library (hashlib, hmac); see the cross-check notes next to each table.
 *
 * Hex strings are lower-case, contain no separators and may be empty ("" = zero-length).
 * Password, salt and message fields of the PBKDF2 and SHA-256 tables are plain ASCII C strings
 * (the bytes of the string, without the terminating NUL).
 */
#ifndef VMSEAL_TESTS_UNIT_CRYPTO_VECTORS_H
#define VMSEAL_TESTS_UNIT_CRYPTO_VECTORS_H

#include <stdint.h>

/* The tables are static; a test file may use only some of them. */
#if defined(__GNUC__) || defined(__clang__)
#define CRYPTO_VECTORS_UNUSED __attribute__((unused))
#else
#define CRYPTO_VECTORS_UNUSED
#endif

#define CRYPTO_VECTORS_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ====================================================================================== */
/*
 * 1. AES-256-GCM, 96-bit IV, 128-bit tag.
 * Sources: NIST CAVP GCM test vectors (gcmtestvectors.zip, CAVS 14.0, 2012): files
 * gcmEncryptExtIV256.rsp and gcmDecrypt256.rsp; and D. McGrew & J. Viega, "The Galois/Counter
 * Mode of Operation (GCM)" (NIST modes submission, revised 2005), Appendix B, Test Cases 13-16
 * (the 96-bit-IV AES-256 cases).
 * valid = 1: decrypting (key, iv, aad, ct, tag) must succeed and yield pt, and encrypting pt
 * must yield ct and tag. valid = 0: the CAVP file marks the vector FAIL; decryption must
 * reject the tag and release no plaintext (pt is empty).
 * Cross-check: EVP_aes_256_gcm() of the system libcrypto 3.0.19 (throwaway helper, since
 * 'openssl enc' refuses AEAD ciphers): encryption reproduces ct||tag, decryption verifies the
 * tag and returns pt; both FAIL vectors are rejected.
 */
struct gcm_vector {
    const char *name;
    const char *key, *iv, *aad, *pt, *ct, *tag;
    int valid;
};

static const struct gcm_vector gcm_vectors[] CRYPTO_VECTORS_UNUSED = {
    /*
     * NIST CAVP gcmEncryptExtIV256.rsp,
     * [Keylen = 256][IVlen = 96][PTlen = 0][AADlen = 0][Taglen = 128], Count = 0
     */
    {
      .name = "CAVP gcmEncryptExtIV256 PTlen=0 AADlen=0 Count=0",
      .key = "b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4",
      .iv = "516c33929df5a3284ff463d7",
      .aad = "",
      .pt = "",
      .ct = "",
      .tag = "bdc1ac884d332457a1d2664f168c76f0",
      .valid = 1,
    },
    /*
     * NIST CAVP gcmEncryptExtIV256.rsp,
     * [Keylen = 256][IVlen = 96][PTlen = 0][AADlen = 128][Taglen = 128], Count = 0
     */
    {
      .name = "CAVP gcmEncryptExtIV256 PTlen=0 AADlen=128 Count=0",
      .key = "78dc4e0aaf52d935c3c01eea57428f00ca1fd475f5da86a49c8dd73d68c8e223",
      .iv = "d79cf22d504cc793c3fb6c8a",
      .aad = "b96baa8c1c75a671bfb2d08d06be5f36",
      .pt = "",
      .ct = "",
      .tag = "3e5d486aa2e30b22e040b85723a06e76",
      .valid = 1,
    },
    /*
     * NIST CAVP gcmEncryptExtIV256.rsp,
     * [Keylen = 256][IVlen = 96][PTlen = 128][AADlen = 0][Taglen = 128], Count = 0
     */
    {
      .name = "CAVP gcmEncryptExtIV256 PTlen=128 AADlen=0 Count=0",
      .key = "31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22",
      .iv = "0d18e06c7c725ac9e362e1ce",
      .aad = "",
      .pt = "2db5168e932556f8089a0622981d017d",
      .ct = "fa4362189661d163fcd6a56d8bf0405a",
      .tag = "d636ac1bbedd5cc3ee727dc2ab4a9489",
      .valid = 1,
    },
    /*
     * NIST CAVP gcmEncryptExtIV256.rsp,
     * [Keylen = 256][IVlen = 96][PTlen = 128][AADlen = 128][Taglen = 128], Count = 0
     */
    {
      .name = "CAVP gcmEncryptExtIV256 PTlen=128 AADlen=128 Count=0",
      .key = "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
      .iv = "ac93a1a6145299bde902f21a",
      .aad = "1e0889016f67601c8ebea4943bc23ad6",
      .pt = "2d71bcfa914e4ac045b2aa60955fad24",
      .ct = "8995ae2e6df3dbf96fac7b7137bae67f",
      .tag = "eca5aa77d51d4a0a14d9c51e1da474ab",
      .valid = 1,
    },
    /*
     * McGrew & Viega, 'The Galois/Counter Mode of Operation (GCM)', rev. 2005, Appendix B,
     * Test Case 13 (AES-256)
     */
    {
      .name = "GCM spec (McGrew-Viega) Test Case 13",
      .key = "0000000000000000000000000000000000000000000000000000000000000000",
      .iv = "000000000000000000000000",
      .aad = "",
      .pt = "",
      .ct = "",
      .tag = "530f8afbc74536b9a963b4f1c4cb738b",
      .valid = 1,
    },
    /*
     * McGrew & Viega, GCM spec Appendix B, Test Case 14 (AES-256)
     */
    {
      .name = "GCM spec (McGrew-Viega) Test Case 14",
      .key = "0000000000000000000000000000000000000000000000000000000000000000",
      .iv = "000000000000000000000000",
      .aad = "",
      .pt = "00000000000000000000000000000000",
      .ct = "cea7403d4d606b6e074ec5d3baf39d18",
      .tag = "d0d1c8a799996bf0265b98b5d48ab919",
      .valid = 1,
    },
    /*
     * McGrew & Viega, GCM spec Appendix B, Test Case 15 (AES-256)
     */
    {
      .name = "GCM spec (McGrew-Viega) Test Case 15",
      .key = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
      .iv = "cafebabefacedbaddecaf888",
      .aad = "",
      .pt =
          "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
      .ct =
          "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
      .tag = "b094dac5d93471bdec1a502270e3cc6c",
      .valid = 1,
    },
    /*
     * McGrew & Viega, GCM spec Appendix B, Test Case 16 (AES-256)
     */
    {
      .name = "GCM spec (McGrew-Viega) Test Case 16",
      .key = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
      .iv = "cafebabefacedbaddecaf888",
      .aad = "feedfacedeadbeeffeedfacedeadbeefabaddad2",
      .pt =
          "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
      .ct =
          "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
      .tag = "76fc6ece0f4e1768cddf8853bb2d551b",
      .valid = 1,
    },
    /*
     * NIST CAVP gcmDecrypt256.rsp,
     * [Keylen = 256][IVlen = 96][PTlen = 0][AADlen = 0][Taglen = 128], Count = 0
     */
    {
      .name = "CAVP gcmDecrypt256 PTlen=0 AADlen=0 Count=0 (PASS)",
      .key = "f5a2b27c74355872eb3ef6c5feafaa740e6ae990d9d48c3bd9bb8235e589f010",
      .iv = "58d2240f580a31c1d24948e9",
      .aad = "",
      .pt = "",
      .ct = "",
      .tag = "15e051a5e4a5f5da6cea92e2ebee5bac",
      .valid = 1,
    },
    /*
     * NIST CAVP gcmDecrypt256.rsp,
     * [Keylen = 256][IVlen = 96][PTlen = 0][AADlen = 0][Taglen = 128], Count = 1, marked FAIL
     */
    {
      .name = "CAVP gcmDecrypt256 PTlen=0 AADlen=0 Count=1 (FAIL)",
      .key = "e5a8123f2e2e007d4e379ba114a2fb66e6613f57c72d4e4f024964053028a831",
      .iv = "51e43385bf533e168427e1ad",
      .aad = "",
      .pt = "",
      .ct = "",
      .tag = "38fe845c66e66bdd884c2aecafd280e6",
      .valid = 0,
    },
    /*
     * NIST CAVP gcmDecrypt256.rsp,
     * [Keylen = 256][IVlen = 96][PTlen = 128][AADlen = 128][Taglen = 128], Count = 2, marked
     * FAIL
     */
    {
      .name = "CAVP gcmDecrypt256 PTlen=128 AADlen=128 Count=2 (FAIL)",
      .key = "9a0343f850a6427120f764789ffec6d237447b898fbf51d2182f065d3861497d",
      .iv = "3deef6f453dd70d92143adcd",
      .aad = "dbb8226a624520863db6897017b2a4f8",
      .pt = "",
      .ct = "e93165935ac18e3a2845d15fe31a9286",
      .tag = "f5fc50d18766bc3d9e16dd136d45816b",
      .valid = 0,
    },
};

/* ====================================================================================== */
/*
 * 2. AES key wrap with padding (KWP), RFC 5649 / NIST SP 800-38F KWP-AE.
 * kek: key-encryption key (192- or 256-bit; the cipher follows from its length); key: key data
 * to wrap; wrapped: expected output of the wrap (= input of the unwrap).
 * Sources: RFC 5649 Section 6 (both examples); NIST CAVP key-wrap vectors (kwtestvectors.zip,
 * CAVS 17.4), file KWP_AE_256.txt (its PLAINTEXT LENGTH is given in bits).
 * Cross-check: EVP_aes_192_wrap_pad() / EVP_aes_256_wrap_pad() of libcrypto 3.0.19 (with
 * EVP_CIPHER_CTX_FLAG_WRAP_ALLOW): wrap(kek, key) == wrapped and unwrap(kek, wrapped) == key.
 */
struct kwp_vector {
    const char *name;
    const char *kek, *key, *wrapped;
};

static const struct kwp_vector kwp_vectors[] CRYPTO_VECTORS_UNUSED = {
    /*
     * RFC 5649 Section 6, first example (20 octets of key data, 192-bit KEK)
     */
    {
      .name = "RFC 5649 s6 wrap 20 octets, 192-bit KEK",
      .kek = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
      .key = "c37b7e6492584340bed12207808941155068f738",
      .wrapped = "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
    },
    /*
     * RFC 5649 Section 6, second example (7 octets of key data, 192-bit KEK)
     */
    {
      .name = "RFC 5649 s6 wrap 7 octets, 192-bit KEK",
      .kek = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
      .key = "466f7250617369",
      .wrapped = "afbeb0f07dfbf5419200f2ccb50bb24f",
    },
    /*
     * NIST CAVP kwtestvectors KWP_AE_256.txt (CAVS 17.4), [PLAINTEXT LENGTH = 8], COUNT = 0
     */
    {
      .name = "CAVP KWP_AE_256 PLAINTEXT LENGTH=8 COUNT=0",
      .kek = "397989e9208a7f0133eab2f8c9a5ec231eb3f771ec409a6c43c75b8ff39b489c",
      .key = "ea",
      .wrapped = "6c0bf17e7c72f5b3a95988c20da4a776",
    },
    /*
     * NIST CAVP kwtestvectors KWP_AE_256.txt (CAVS 17.4), [PLAINTEXT LENGTH = 72], COUNT = 0
     */
    {
      .name = "CAVP KWP_AE_256 PLAINTEXT LENGTH=72 COUNT=0",
      .kek = "f5a3f19df4bca6d8b9736a410053e8fdde705237c882df80e6d836fa9b5eb316",
      .key = "9dba964ee6cbe6dad4",
      .wrapped = "708ca1a77dcb2f1fd61ff6a8b7c3be265fc624d18a78b8e3",
    },
    /*
     * NIST CAVP kwtestvectors KWP_AE_256.txt (CAVS 17.4), [PLAINTEXT LENGTH = 96], COUNT = 0
     */
    {
      .name = "CAVP KWP_AE_256 PLAINTEXT LENGTH=96 COUNT=0",
      .kek = "83cf4e2000a665ad82809166127e6a22274f04b4dff9068cdab017dd0c2505f9",
      .key = "a037c93d938a925432d8472f",
      .wrapped = "aa6f2d0080e24f35e4ce00046626b3def84b127e56a61afd",
    },
    /*
     * NIST CAVP kwtestvectors KWP_AE_256.txt (CAVS 17.4), [PLAINTEXT LENGTH = 808], COUNT = 0
     */
    {
      .name = "CAVP KWP_AE_256 PLAINTEXT LENGTH=808 COUNT=0",
      .kek = "e3f48030c5d82484950b78e94bd2a7fd4a78dc354c8c329c933f34162a58cb1c",
      .key =
          "d7acd7223cb79c616433e26313b3507a0c47e9c0e9ebe2197f4f18863c70019b"
          "195d5084c565d609968bcf1ec94900e1d718fe67d785808b971067102d31bb1d"
          "88ee09edaa5b6405afef16f4b66b28e2df064ee95037110eab1ed2c151192c01"
          "677d140202",
      .wrapped =
          "6c5c8bb53215760819ed3aed9abbd68544f6a952e403849188eb46dd02260976"
          "1a0d05b1d32a342eb71c38f043163c2fcc8c821b093352f887684c2d7998b799"
          "3dddad7800f956ae87aeec01b68e8149f0d3d58271adf2c13460ef892c20072d"
          "478736a371c72870156401a4fefefed9",
    },
};

/* ====================================================================================== */
/*
 * 3. XTS-AES-256, IEEE P1619/D16 (= IEEE Std 1619-2007) Annex B, Vectors 10 to 14.
 * All five use Key1 = 27182818284590452353602874713526 62497757247093699959574966967627 and
 * Key2 = 31415926535897932384626433832795 02884197169399375105820974944592; .key is Key1 ||
 * Key2 (64 bytes, the layout EVP_aes_256_xts() expects). Each data unit is 512 bytes; the
 * plaintext of every vector is the bytes 00 01 02 .. ff repeated twice.
 * .sector is the data unit sequence number of the vector. IEEE 1619 encodes it as a 128-bit
 * little-endian tweak (the vectors list the tweak 'ff' as ff00..00, 'ffff' as ffff00..00,
 * ...). That is exactly dm-crypt's "plain64" IV: crypt_iv_plain64_gen() in
 * drivers/md/dm-crypt.c zeroes the 16-byte IV and stores cpu_to_le64(sector) in its first 8
 * bytes. So tweak = le64(sector) || 00*8.
 * Cross-check: EVP_aes_256_xts() of libcrypto 3.0.19 with IV = le64(sector) padded to 16
 * bytes: encrypt(pt) == ct and decrypt(ct) == pt for all five ('openssl enc' of OpenSSL 3.0
 * refuses XTS, so the library was called directly).
 */
struct xts_vector {
    const char *name;
    const char *key;
    uint64_t sector;
    const char *pt, *ct;
};

#define XTS_IEEE1619_KEY_1_2 \
    "2718281828459045235360287471352662497757247093699959574966967627" \
    "3141592653589793238462643383279502884197169399375105820974944592"

/* IEEE P1619/D16 vectors 10-14 plaintext: 00 01 .. ff, twice (512 bytes). */
#define XTS_IEEE1619_PT_00_FF_X2 \
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" \
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" \
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f" \
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f" \
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" \
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf" \
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf" \
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff" \
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" \
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" \
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f" \
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f" \
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" \
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf" \
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf" \
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"

static const struct xts_vector xts_vectors[] CRYPTO_VECTORS_UNUSED = {
    /*
     * IEEE P1619/D16 Annex B, Vector 10: XTS-AES-256, 512-byte data unit, data unit sequence
     * number 0xff (tweak ff000000000000000000000000000000).
     */
    {
      .name = "IEEE P1619/D16 Vector 10",
      .key = XTS_IEEE1619_KEY_1_2,
      .sector = UINT64_C(0xff),
      .pt = XTS_IEEE1619_PT_00_FF_X2,
      .ct =
          "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b"
          "5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"
          "5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
          "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca"
          "2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0"
          "b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
          "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec"
          "583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a"
          "84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
          "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae"
          "9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29"
          "a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
          "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f"
          "645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385"
          "1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
          "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151",
    },
    /*
     * IEEE P1619/D16 Annex B, Vector 11: XTS-AES-256, 512-byte data unit, data unit sequence
     * number 0xffff (tweak ffff0000000000000000000000000000).
     */
    {
      .name = "IEEE P1619/D16 Vector 11",
      .key = XTS_IEEE1619_KEY_1_2,
      .sector = UINT64_C(0xffff),
      .pt = XTS_IEEE1619_PT_00_FF_X2,
      .ct =
          "77a31251618a15e6b92d1d66dffe7b50b50bad552305ba0217a610688eff7e11"
          "e1d0225438e093242d6db274fde801d4cae06f2092c728b2478559df58e837c2"
          "469ee4a4fa794e4bbc7f39bc026e3cb72c33b0888f25b4acf56a2a9804f1ce6d"
          "3d6e1dc6ca181d4b546179d55544aa7760c40d06741539c7e3cd9d2f6650b201"
          "3fd0eeb8c2b8e3d8d240ccae2d4c98320a7442e1c8d75a42d6e6cfa4c2eca179"
          "8d158c7aecdf82490f24bb9b38e108bcda12c3faf9a21141c3613b58367f922a"
          "aa26cd22f23d708dae699ad7cb40a8ad0b6e2784973dcb605684c08b8d6998c6"
          "9aac049921871ebb65301a4619ca80ecb485a31d744223ce8ddc2394828d6a80"
          "470c092f5ba413c3378fa6054255c6f9df4495862bbb3287681f931b687c888a"
          "bf844dfc8fc28331e579928cd12bd2390ae123cf03818d14dedde5c0c24c8ab0"
          "18bfca75ca096f2d531f3d1619e785f1ada437cab92e980558b3dce1474afb75"
          "bfedbf8ff54cb2618e0244c9ac0d3c66fb51598cd2db11f9be39791abe447c63"
          "094f7c453b7ff87cb5bb36b7c79efb0872d17058b83b15ab0866ad8a58656c5a"
          "7e20dbdf308b2461d97c0ec0024a2715055249cf3b478ddd4740de654f75ca68"
          "6e0d7345c69ed50cdc2a8b332b1f8824108ac937eb050585608ee734097fc090"
          "54fbff89eeaeea791f4a7ab1f9868294a4f9e27b42af8100cb9d59cef9645803",
    },
    /*
     * IEEE P1619/D16 Annex B, Vector 12: XTS-AES-256, 512-byte data unit, data unit sequence
     * number 0xffffff (tweak ffffff00000000000000000000000000).
     */
    {
      .name = "IEEE P1619/D16 Vector 12",
      .key = XTS_IEEE1619_KEY_1_2,
      .sector = UINT64_C(0xffffff),
      .pt = XTS_IEEE1619_PT_00_FF_X2,
      .ct =
          "e387aaa58ba483afa7e8eb469778317ecf4cf573aa9d4eac23f2cdf914e4e200"
          "a8b490e42ee646802dc6ee2b471b278195d60918ececb44bf79966f83faba049"
          "9298ebc699c0c8634715a320bb4f075d622e74c8c932004f25b41e361025b5a8"
          "7815391f6108fc4afa6a05d9303c6ba68a128a55705d415985832fdeaae6c8e1"
          "9110e84d1b1f199a2692119edc96132658f09da7c623efcec712537a3d94c0bf"
          "5d7e352ec94ae5797fdb377dc1551150721adf15bd26a8efc2fcaad56881fa9e"
          "62462c28f30ae1ceaca93c345cf243b73f542e2074a705bd2643bb9f7cc79bb6"
          "e7091ea6e232df0f9ad0d6cf502327876d82207abf2115cdacf6d5a48f6c1879"
          "a65b115f0f8b3cb3c59d15dd8c769bc014795a1837f3901b5845eb491adfefe0"
          "97b1fa30a12fc1f65ba22905031539971a10f2f36c321bb51331cdefb39e3964"
          "c7ef079994f5b69b2edd83a71ef549971ee93f44eac3938fcdd61d01fa71799d"
          "a3a8091c4c48aa9ed263ff0749df95d44fef6a0bb578ec69456aa5408ae32c7a"
          "f08ad7ba8921287e3bbee31b767be06a0e705c864a769137df28292283ea81a2"
          "480241b44d9921cdbec1bc28dc1fda114bd8e5217ac9d8ebafa720e9da4f9ace"
          "231cc949e5b96fe76ffc21063fddc83a6b8679c00d35e09576a875305bed5f36"
          "ed242c8900dd1fa965bc950dfce09b132263a1eef52dd6888c309f5a7d712826",
    },
    /*
     * IEEE P1619/D16 Annex B, Vector 13: XTS-AES-256, 512-byte data unit, data unit sequence
     * number 0xffffffff (tweak ffffffff000000000000000000000000).
     */
    {
      .name = "IEEE P1619/D16 Vector 13",
      .key = XTS_IEEE1619_KEY_1_2,
      .sector = UINT64_C(0xffffffff),
      .pt = XTS_IEEE1619_PT_00_FF_X2,
      .ct =
          "bf53d2dade78e822a4d949a9bc6766b01b06a8ef70d26748c6a7fc36d80ae4c5"
          "520f7c4ab0ac8544424fa405162fef5a6b7f229498063618d39f0003cb5fb8d1"
          "c86b643497da1ff945c8d3bedeca4f479702a7a735f043ddb1d6aaade3c4a0ac"
          "7ca7f3fa5279bef56f82cd7a2f38672e824814e10700300a055e1630b8f1cb0e"
          "919f5e942010a416e2bf48cb46993d3cb6a51c19bacf864785a00bc2ecff15d3"
          "50875b246ed53e68be6f55bd7e05cfc2b2ed6432198a6444b6d8c247fab941f5"
          "69768b5c429366f1d3f00f0345b96123d56204c01c63b22ce78baf116e525ed9"
          "0fdea39fa469494d3866c31e05f295ff21fea8d4e6e13d67e47ce722e9698a1c"
          "1048d68ebcde76b86fcf976eab8aa9790268b7068e017a8b9b749409514f1053"
          "027fd16c3786ea1bac5f15cb79711ee2abe82f5cf8b13ae73030ef5b9e4457e7"
          "5d1304f988d62dd6fc4b94ed38ba831da4b7634971b6cd8ec325d9c61c00f1df"
          "73627ed3745a5e8489f3a95c69639c32cd6e1d537a85f75cc844726e8a72fc00"
          "77ad22000f1d5078f6b866318c668f1ad03d5a5fced5219f2eabbd0aa5c0f460"
          "d183f04404a0d6f469558e81fab24a167905ab4c7878502ad3e38fdbe62a4155"
          "6cec37325759533ce8f25f367c87bb5578d667ae93f9e2fd99bcbc5f2fbba88c"
          "f6516139420fcff3b7361d86322c4bd84c82f335abb152c4a93411373aaa8220",
    },
    /*
     * IEEE P1619/D16 Annex B, Vector 14: XTS-AES-256, 512-byte data unit, data unit sequence
     * number 0xffffffffff (tweak ffffffffff0000000000000000000000).
     */
    {
      .name = "IEEE P1619/D16 Vector 14",
      .key = XTS_IEEE1619_KEY_1_2,
      .sector = UINT64_C(0xffffffffff),
      .pt = XTS_IEEE1619_PT_00_FF_X2,
      .ct =
          "64497e5a831e4a932c09be3e5393376daa599548b816031d224bbf50a818ed23"
          "50eae7e96087c8a0db51ad290bd00c1ac1620857635bf246c176ab463be30b80"
          "8da548081ac847b158e1264be25bb0910bbc92647108089415d45fab1b3d2604"
          "e8a8eff1ae4020cfa39936b66827b23f371b92200be90251e6d73c5f86de5fd4"
          "a950781933d79a28272b782a2ec313efdfcc0628f43d744c2dc2ff3dcb66999b"
          "50c7ca895b0c64791eeaa5f29499fb1c026f84ce5b5c72ba1083cddb5ce45434"
          "631665c333b60b11593fb253c5179a2c8db813782a004856a1653011e93fb6d8"
          "76c18366dd8683f53412c0c180f9c848592d593f8609ca736317d356e13e2bff"
          "3a9f59cd9aeb19cd482593d8c46128bb32423b37a9adfb482b99453fbe25a41b"
          "f6feb4aa0bef5ed24bf73c762978025482c13115e4015aac992e5613a3b5c2f6"
          "85b84795cb6e9b2656d8c88157e52c42f978d8634c43d06fea928f2822e465aa"
          "6576e9bf419384506cc3ce3c54ac1a6f67dc66f3b30191e698380bc999b05abc"
          "e19dc0c6dcc2dd001ec535ba18deb2df1a101023108318c75dc98611a09dc48a"
          "0acdec676fabdf222f07e026f059b672b56e5cbc8e1d21bbd867dd9272120546"
          "81d70ea737134cdfce93b6f82ae22423274e58a0821cc5502e2d0ab4585e94de"
          "6975be5e0b4efce51cd3e70c25a1fbbbd609d273ad5b0d59631c531f6a0a57b9",
    },
};

/* ====================================================================================== */
/*
 * 4. HKDF-SHA256, RFC 5869 Appendix A, Test Cases 1, 2 and 3.
 * prk = HKDF-Extract(salt, ikm); okm = HKDF-Expand(prk, info, L) with L = strlen(okm) / 2. An
 * empty salt means "not provided" (RFC 5869: a string of HashLen zero bytes).
 * Cross-check: 'openssl kdf -keylen L -kdfopt digest:SHA256 -kdfopt hexkey:IKM
 * [-kdfopt hexsalt:SALT] [-kdfopt hexinfo:INFO] HKDF' (okm) and the same with '-kdfopt
 * mode:EXTRACT_ONLY -keylen 32' (prk); and an independent HKDF written with Python's
 * hmac/hashlib.
 */
struct hkdf_vector {
    const char *name;
    const char *ikm, *salt, *info, *prk, *okm;
};

static const struct hkdf_vector hkdf_vectors[] CRYPTO_VECTORS_UNUSED = {
    /*
     * RFC 5869 Appendix A.1 (Test Case 1, SHA-256, L = 42)
     */
    {
      .name = "RFC 5869 A.1 Test Case 1",
      .ikm = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
      .salt = "000102030405060708090a0b0c",
      .info = "f0f1f2f3f4f5f6f7f8f9",
      .prk = "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
      .okm =
          "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
          "34007208d5b887185865",
    },
    /*
     * RFC 5869 Appendix A.2 (Test Case 2, SHA-256, L = 82)
     */
    {
      .name = "RFC 5869 A.2 Test Case 2",
      .ikm =
          "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
          "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
          "404142434445464748494a4b4c4d4e4f",
      .salt =
          "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
          "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
          "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
      .info =
          "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
          "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
          "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
      .prk = "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
      .okm =
          "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
          "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
          "cc30c58179ec3e87c14c01d5c1f3434f1d87",
    },
    /*
     * RFC 5869 Appendix A.3 (Test Case 3, SHA-256, zero-length salt and info, L = 42)
     */
    {
      .name = "RFC 5869 A.3 Test Case 3",
      .ikm = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
      .salt = "",
      .info = "",
      .prk = "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
      .okm =
          "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
          "9d201395faa4b61a96c8",
    },
};

/* ====================================================================================== */
/*
 * 5. HMAC-SHA256, RFC 4231 Section 4, Test Cases 1, 2, 3, 4, 6 and 7 (Test Case 5, which
 * truncates the output to 128 bits, is deliberately left out). mac is the full 32-byte
 * HMAC-SHA-256.
 * Cross-check: Python hmac.new(key, data, hashlib.sha256) and 'openssl mac -digest SHA256
 * -macopt hexkey:KEY HMAC' (data on stdin).
 */
struct hmac_vector {
    const char *name;
    const char *key, *data, *mac;
};

static const struct hmac_vector hmac_vectors[] CRYPTO_VECTORS_UNUSED = {
    /*
     * RFC 4231 Section 4.2 (Test Case 1)
     */
    {
      .name = "RFC 4231 Test Case 1",
      .key = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
      .data = "4869205468657265",
      .mac = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    },
    /*
     * RFC 4231 Section 4.3 (Test Case 2)
     */
    {
      .name = "RFC 4231 Test Case 2",
      .key = "4a656665",
      .data = "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
      .mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    },
    /*
     * RFC 4231 Section 4.4 (Test Case 3)
     */
    {
      .name = "RFC 4231 Test Case 3",
      .key = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      .data =
          "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
          "dddddddddddddddddddddddddddddddddddd",
      .mac = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    },
    /*
     * RFC 4231 Section 4.5 (Test Case 4)
     */
    {
      .name = "RFC 4231 Test Case 4",
      .key = "0102030405060708090a0b0c0d0e0f10111213141516171819",
      .data =
          "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
          "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
      .mac = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    },
    /*
     * RFC 4231 Section 4.7 (Test Case 6)
     */
    {
      .name = "RFC 4231 Test Case 6",
      .key =
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaa",
      .data =
          "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a"
          "65204b6579202d2048617368204b6579204669727374",
      .mac = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    },
    /*
     * RFC 4231 Section 4.8 (Test Case 7)
     */
    {
      .name = "RFC 4231 Test Case 7",
      .key =
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaa",
      .data =
          "5468697320697320612074657374207573696e672061206c6172676572207468"
          "616e20626c6f636b2d73697a65206b657920616e642061206c61726765722074"
          "68616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565"
          "647320746f20626520686173686564206265666f7265206265696e6720757365"
          "642062792074686520484d414320616c676f726974686d2e",
      .mac = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    },
};

/* ====================================================================================== */
/*
 * 6. PBKDF2-HMAC-SHA256 (RFC 8018 / RFC 2898 PBKDF2 with HMAC-SHA-256 as PRF). password and
 * salt are ASCII strings; dkLen = strlen(dk) / 2.
 * Sources: RFC 7914 Section 11 (both vectors). RFC 6070 itself only gives PBKDF2-HMAC-SHA1
 * results; the SHA-256 results for its inputs ("password"/"salt", c = 1, 2, 4096, and the
 * 24/36-octet case) are the widely published values of the Stack Overflow question 5130513
 * "PBKDF2-HMAC-SHA2 test vectors" (answer 5136918), also used verbatim by OpenSSL's
 * test/recipes/30-test_evp_data/evpkdf_pbkdf2.txt.
 * Cross-check: Python hashlib.pbkdf2_hmac('sha256', ...) and 'openssl kdf -keylen N -kdfopt
 * digest:SHA256 -kdfopt pass:P -kdfopt salt:S -kdfopt iter:C PBKDF2'.
 */
struct pbkdf2_vector {
    const char *name;
    const char *password, *salt; /* plain ASCII strings */
    uint32_t iterations;
    const char *dk;
};

static const struct pbkdf2_vector pbkdf2_vectors[] CRYPTO_VECTORS_UNUSED = {
    /*
     * RFC 7914 Section 11, PBKDF2-HMAC-SHA-256 (P="passwd", S="salt", c=1, dkLen=64)
     */
    {
      .name = "RFC 7914 s11 passwd/salt c=1 dkLen=64",
      .password = "passwd",
      .salt = "salt",
      .iterations = 1,
      .dk =
          "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
          "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
    },
    /*
     * RFC 7914 Section 11, PBKDF2-HMAC-SHA-256 (P="Password", S="NaCl", c=80000, dkLen=64)
     */
    {
      .name = "RFC 7914 s11 Password/NaCl c=80000 dkLen=64",
      .password = "Password",
      .salt = "NaCl",
      .iterations = 80000,
      .dk =
          "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
          "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d",
    },
    /*
     * RFC 6070 test case 1 inputs with HMAC-SHA-256; value as published in Stack Overflow q.
     * 5130513 'PBKDF2-HMAC-SHA2 test vectors' (answer 5136918) and in OpenSSL
     * test/recipes/30-test_evp_data/evpkdf_pbkdf2.txt
     */
    {
      .name = "PBKDF2-HMAC-SHA256 password/salt c=1 dkLen=32",
      .password = "password",
      .salt = "salt",
      .iterations = 1,
      .dk = "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b",
    },
    /*
     * RFC 6070 test case 2 inputs with HMAC-SHA-256; same publications as above
     */
    {
      .name = "PBKDF2-HMAC-SHA256 password/salt c=2 dkLen=32",
      .password = "password",
      .salt = "salt",
      .iterations = 2,
      .dk = "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
    },
    /*
     * RFC 6070 test case 3 inputs with HMAC-SHA-256; same publications as above
     */
    {
      .name = "PBKDF2-HMAC-SHA256 password/salt c=4096 dkLen=32",
      .password = "password",
      .salt = "salt",
      .iterations = 4096,
      .dk = "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a",
    },
    /*
     * RFC 6070 test case 5 inputs with HMAC-SHA-256 (dkLen=40); same publications as above
     */
    {
      .name = "PBKDF2-HMAC-SHA256 passwordPASSWORDpassword c=4096 dkLen=40",
      .password = "passwordPASSWORDpassword",
      .salt = "saltSALTsaltSALTsaltSALTsaltSALTsalt",
      .iterations = 4096,
      .dk = "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9",
    },
};

/* ====================================================================================== */
/*
 * 7. SHA-256, FIPS 180-2 Appendix B examples (unchanged in FIPS 180-4's example files). msg is
 * an ASCII string hashed without its NUL.
 * Cross-check: Python hashlib.sha256 and 'openssl dgst -sha256'.
 */
struct sha256_vector {
    const char *name;
    const char *msg; /* plain ASCII string */
    const char *digest;
};

static const struct sha256_vector sha256_vectors[] CRYPTO_VECTORS_UNUSED = {
    /*
     * FIPS 180-2 Appendix B.1 (SHA-256 Example, One-Block Message "abc")
     */
    {
      .name = "FIPS 180-2 B.1 \"abc\"",
      .msg = "abc",
      .digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    },
    /*
     * FIPS 180-2 Appendix B.2 (SHA-256 Example, Multi-Block Message, 448 bits)
     */
    {
      .name = "FIPS 180-2 B.2 448-bit message",
      .msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      .digest = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    },
};

#endif /* VMSEAL_TESTS_UNIT_CRYPTO_VECTORS_H */
