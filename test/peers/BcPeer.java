// Bouncy Castle 1.72 as an interop peer for Kakitome's tests (test/peers/bouncy-castle.ts).
//
// Run without a build step: java -cp <jakarta-mail:jakarta-activation:bcprov:bcpkix:bcutil:bcjmail> BcPeer.java JOBS
// A JVM takes about a second to start, so one run processes a whole file of jobs: one job
// per line, fields separated by TAB. For each job it prints one line "ID<TAB>OK<TAB>info" or
// "ID<TAB>ERR<TAB>reason" and carries on with the next job; the exit status is 0 unless the
// job file itself cannot be read.
//
//   sign     ID IN OUT detached|encapsulated (ALG CERT KEY)+     ALG: a JCA name, e.g. SHA256withRSA,
//                                                                SHA256withRSAandMGF1 (PSS), SHA384withECDSA, Ed25519, Ed448
//   verify   ID SIG CONTENT|- CA OUT|-                          info: signer count and signature algorithm OIDs
//   encrypt  ID IN OUT CIPHER (MODE CERT)+                      CIPHER: aes128-cbc aes192-cbc aes256-cbc aes128-gcm
//                                                                aes192-gcm aes256-gcm chacha20-poly1305; MODE: rsa15 oaep-sha1
//                                                                oaep-sha256 ecdh-sha1 ecdh-sha256 ecdh-sha384 ecdh-sha512
//   decrypt  ID IN OUT CERT KEY                                 info: the content-encryption algorithm OID
//   countersign ID SIG OUT ALG CERT KEY                         adds a countersignature (RFC 5652 11.4) to the first signer
//   compress   ID IN OUT                                        CompressedData (RFC 3274, zlib), streamed BER
//   uncompress ID IN OUT                                        info: the compression algorithm OID
//
// Output is whatever Bouncy Castle writes by itself (the stream generators write
// indefinite-length BER), so Kakitome's BER reader is exercised on real peer output.

import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.*;
import java.security.cert.X509Certificate;
import java.security.spec.MGF1ParameterSpec;
import java.util.*;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;

import org.bouncycastle.asn1.*;
import org.bouncycastle.asn1.cms.ContentInfo;
import org.bouncycastle.asn1.cms.CMSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaCertStore;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cms.*;
import org.bouncycastle.cms.jcajce.*;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.OutputAEADEncryptor;
import org.bouncycastle.operator.OutputEncryptor;
import org.bouncycastle.operator.jcajce.JcaAlgorithmParametersConverter;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.util.Store;

public class BcPeer {
    static final String BC = "BC";

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        List<String> lines = Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8);
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
        for (String line : lines) {
            if (line.isBlank()) continue;
            String[] f = line.split("\t");
            String id = f.length > 1 ? f[1] : "?";
            try {
                String info;
                switch (f[0]) {
                    case "sign": info = sign(f); break;
                    case "verify": info = verify(f); break;
                    case "encrypt": info = encrypt(f); break;
                    case "decrypt": info = decrypt(f); break;
                    case "countersign": info = countersign(f); break;
                    case "compress": info = compress(f); break;
                    case "uncompress": info = uncompress(f); break;
                    default: throw new IllegalArgumentException("unknown job " + f[0]);
                }
                out.println(id + "\tOK\t" + info);
            } catch (Throwable e) {
                String msg = (e.getClass().getSimpleName() + ": " + e.getMessage()).replace('\n', ' ').replace('\t', ' ');
                out.println(id + "\tERR\t" + msg);
            }
        }
    }

    // countersign ID SIG OUT ALG CERT KEY
    static String countersign(String[] f) throws Exception {
        CMSSignedData sd = new CMSSignedData(Files.readAllBytes(Paths.get(f[2])));
        SignerInformation first = sd.getSignerInfos().getSigners().iterator().next();
        X509Certificate c = cert(f[5]);
        CMSSignedDataGenerator gen = new CMSSignedDataGenerator();
        gen.addSignerInfoGenerator(new JcaSignerInfoGeneratorBuilder(new JcaDigestCalculatorProviderBuilder().setProvider(BC).build())
            .build(new JcaContentSignerBuilder(f[4]).setProvider(BC).build(key(f[6])), c));
        SignerInformation countersigned = SignerInformation.addCounterSigners(first, gen.generateCounterSigners(first));
        CMSSignedData out = CMSSignedData.replaceSigners(sd, new SignerInformationStore(countersigned));
        List<X509CertificateHolder> certs = new ArrayList<>(sd.getCertificates().getMatches(null));
        certs.add(new X509CertificateHolder(c.getEncoded()));
        out = CMSSignedData.replaceCertificatesAndCRLs(out, new org.bouncycastle.util.CollectionStore<>(certs), null, null);
        Files.write(Paths.get(f[3]), out.getEncoded());
        return "1 countersigner";
    }

    // compress ID IN OUT
    static String compress(String[] f) throws Exception {
        byte[] content = Files.readAllBytes(Paths.get(f[2]));
        try (OutputStream file = Files.newOutputStream(Paths.get(f[3]))) {
            OutputStream out = new CMSCompressedDataStreamGenerator().open(file, new ZlibCompressor());
            out.write(content);
            out.close();
        }
        return "zlib";
    }

    // uncompress ID IN OUT
    static String uncompress(String[] f) throws Exception {
        CMSCompressedData cd = new CMSCompressedData(Files.readAllBytes(Paths.get(f[2])));
        Files.write(Paths.get(f[3]), cd.getContent(new ZlibExpanderProvider()));
        return org.bouncycastle.asn1.cms.CompressedData.getInstance(cd.toASN1Structure().getContent())
            .getCompressionAlgorithmIdentifier().getAlgorithm().getId();
    }

    static X509Certificate cert(String path) throws Exception {
        try (PEMParser p = new PEMParser(Files.newBufferedReader(Paths.get(path)))) {
            X509CertificateHolder h = (X509CertificateHolder) p.readObject();
            return new JcaX509CertificateConverter().setProvider(BC).getCertificate(h);
        }
    }

    static PrivateKey key(String path) throws Exception {
        try (PEMParser p = new PEMParser(Files.newBufferedReader(Paths.get(path)))) {
            return new JcaPEMKeyConverter().setProvider(BC).getPrivateKey((PrivateKeyInfo) p.readObject());
        }
    }

    // sign ID IN OUT detached|encapsulated (ALG CERT KEY)+
    static String sign(String[] f) throws Exception {
        byte[] content = Files.readAllBytes(Paths.get(f[2]));
        boolean detached = f[4].equals("detached");
        CMSSignedDataStreamGenerator gen = new CMSSignedDataStreamGenerator();
        List<X509Certificate> certs = new ArrayList<>();
        for (int i = 5; i + 2 < f.length; i += 3) {
            X509Certificate c = cert(f[i + 1]);
            ContentSigner signer = new JcaContentSignerBuilder(f[i]).setProvider(BC).build(key(f[i + 2]));
            gen.addSignerInfoGenerator(new JcaSignerInfoGeneratorBuilder(
                new JcaDigestCalculatorProviderBuilder().setProvider(BC).build()).build(signer, c));
            certs.add(c);
        }
        if (certs.isEmpty()) throw new IllegalArgumentException("no signers");
        gen.addCertificates(new JcaCertStore(certs));
        try (OutputStream file = Files.newOutputStream(Paths.get(f[3]))) {
            OutputStream sigOut = gen.open(file, !detached);
            sigOut.write(content);
            sigOut.close();
        }
        return certs.size() + " signer(s)";
    }

    // verify ID SIG CONTENT|- CA OUT|-
    static String verify(String[] f) throws Exception {
        byte[] sig = Files.readAllBytes(Paths.get(f[2]));
        CMSSignedData sd = f[3].equals("-")
            ? new CMSSignedData(sig)
            : new CMSSignedData(new CMSProcessableByteArray(Files.readAllBytes(Paths.get(f[3]))), sig);
        X509Certificate ca = cert(f[4]);
        Store<X509CertificateHolder> store = sd.getCertificates();
        Collection<SignerInformation> signers = sd.getSignerInfos().getSigners();
        if (signers.isEmpty()) throw new IllegalStateException("no signers");
        StringBuilder algs = new StringBuilder();
        for (SignerInformation si : signers) {
            @SuppressWarnings("unchecked")
            Collection<X509CertificateHolder> matches = store.getMatches(si.getSID());
            if (matches.isEmpty()) throw new IllegalStateException("signer certificate not in message");
            X509CertificateHolder holder = matches.iterator().next();
            // Chain: the signer certificate must be issued by our test CA and be valid now.
            if (!holder.isSignatureValid(new JcaContentVerifierProviderBuilder().setProvider(BC).build(ca)))
                throw new IllegalStateException("signer certificate not issued by the CA");
            if (!holder.isValidOn(new Date())) throw new IllegalStateException("signer certificate not valid now");
            if (!si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider(BC).build(holder)))
                throw new IllegalStateException("signature does not verify");
            algs.append(' ').append(si.getEncryptionAlgOID());
        }
        if (!f[5].equals("-")) {
            Object c = sd.getSignedContent() == null ? null : sd.getSignedContent().getContent();
            if (!(c instanceof byte[])) throw new IllegalStateException("no encapsulated content");
            Files.write(Paths.get(f[5]), (byte[]) c);
        }
        return signers.size() + algs.toString();
    }

    static ASN1ObjectIdentifier cipher(String name) {
        switch (name) {
            case "aes128-cbc": return CMSAlgorithm.AES128_CBC;
            case "aes192-cbc": return CMSAlgorithm.AES192_CBC;
            case "aes256-cbc": return CMSAlgorithm.AES256_CBC;
            case "aes128-gcm": return CMSAlgorithm.AES128_GCM;
            case "aes192-gcm": return CMSAlgorithm.AES192_GCM;
            case "aes256-gcm": return CMSAlgorithm.AES256_GCM;
            // RFC 8103 id-alg-AEADChaCha20Poly1305
            case "chacha20-poly1305": return new ASN1ObjectIdentifier("1.2.840.113549.1.9.16.3.18");
            default: throw new IllegalArgumentException("unknown cipher " + name);
        }
    }

    static ASN1ObjectIdentifier ecdhKdf(String mode) {
        switch (mode) {
            case "ecdh-sha1": return CMSAlgorithm.ECDH_SHA1KDF;
            case "ecdh-sha256": return CMSAlgorithm.ECDH_SHA256KDF;
            case "ecdh-sha384": return CMSAlgorithm.ECDH_SHA384KDF;
            case "ecdh-sha512": return CMSAlgorithm.ECDH_SHA512KDF;
            default: throw new IllegalArgumentException("unknown recipient mode " + mode);
        }
    }

    static RecipientInfoGenerator recipient(String mode, X509Certificate c) throws Exception {
        switch (mode) {
            case "rsa15":
                return new JceKeyTransRecipientInfoGenerator(c).setProvider(BC);
            case "oaep-sha1":
            case "oaep-sha256": {
                boolean sha256 = mode.equals("oaep-sha256");
                OAEPParameterSpec spec = sha256
                    ? new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT)
                    : new OAEPParameterSpec("SHA-1", "MGF1", MGF1ParameterSpec.SHA1, PSource.PSpecified.DEFAULT);
                AlgorithmIdentifier alg = new JcaAlgorithmParametersConverter()
                    .getAlgorithmIdentifier(PKCSObjectIdentifiers.id_RSAES_OAEP, spec);
                return new JceKeyTransRecipientInfoGenerator(c, alg).setProvider(BC);
            }
            default: {
                // RFC 5753: one ephemeral key per recipient, on the recipient's curve.
                PublicKey pub = c.getPublicKey();
                KeyPairGenerator kpg;
                if (pub instanceof java.security.interfaces.ECPublicKey) {
                    kpg = KeyPairGenerator.getInstance("EC", BC);
                    kpg.initialize(((java.security.interfaces.ECPublicKey) pub).getParams());
                } else {
                    // X25519/X448: same generator API; whether BC's CMS layer accepts it is what we measure.
                    kpg = KeyPairGenerator.getInstance(pub.getAlgorithm(), BC);
                }
                KeyPair eph = kpg.generateKeyPair();
                ASN1ObjectIdentifier wrap = mode.equals("ecdh-sha1") || mode.equals("ecdh-sha256")
                    ? CMSAlgorithm.AES128_WRAP : CMSAlgorithm.AES256_WRAP;
                return new JceKeyAgreeRecipientInfoGenerator(ecdhKdf(mode), eph.getPrivate(), eph.getPublic(), wrap)
                    .addRecipient(c).setProvider(BC);
            }
        }
    }

    // encrypt ID IN OUT CIPHER (MODE CERT)+
    static String encrypt(String[] f) throws Exception {
        byte[] content = Files.readAllBytes(Paths.get(f[2]));
        ASN1ObjectIdentifier alg = cipher(f[4]);
        List<RecipientInfoGenerator> ris = new ArrayList<>();
        for (int i = 5; i + 1 < f.length; i += 2) ris.add(recipient(f[i], cert(f[i + 1])));
        if (ris.isEmpty()) throw new IllegalArgumentException("no recipients");
        OutputEncryptor enc = new JceCMSContentEncryptorBuilder(alg).setProvider(BC).build();
        byte[] der;
        if (enc instanceof OutputAEADEncryptor) {
            // RFC 5083 AuthEnvelopedData: 1.72's SMIME generators cannot write it, the CMS one can.
            CMSAuthEnvelopedDataGenerator gen = new CMSAuthEnvelopedDataGenerator();
            for (RecipientInfoGenerator r : ris) gen.addRecipientInfoGenerator(r);
            der = gen.generate(new CMSProcessableByteArray(content), (OutputAEADEncryptor) enc).getEncoded();
        } else {
            CMSEnvelopedDataStreamGenerator gen = new CMSEnvelopedDataStreamGenerator();
            for (RecipientInfoGenerator r : ris) gen.addRecipientInfoGenerator(r);
            ByteArrayOutputStream bo = new ByteArrayOutputStream();
            OutputStream o = gen.open(bo, enc);
            o.write(content);
            o.close();
            der = bo.toByteArray();
        }
        Files.write(Paths.get(f[3]), der);
        return ris.size() + " recipient(s) " + alg.getId();
    }

    // decrypt ID IN OUT CERT KEY
    static String decrypt(String[] f) throws Exception {
        byte[] der = Files.readAllBytes(Paths.get(f[2]));
        X509Certificate c = cert(f[4]);
        PrivateKey k = key(f[5]);
        X509CertificateHolder holder = new X509CertificateHolder(c.getEncoded());
        ContentInfo ci = ContentInfo.getInstance(ASN1Primitive.fromByteArray(der));
        RecipientInformationStore store;
        String alg;
        if (ci.getContentType().equals(CMSObjectIdentifiers.authEnvelopedData)) {
            CMSAuthEnvelopedData ad = new CMSAuthEnvelopedData(der);
            store = ad.getRecipientInfos();
            alg = org.bouncycastle.asn1.cms.AuthEnvelopedData.getInstance(ci.getContent())
                .getAuthEncryptedContentInfo().getContentEncryptionAlgorithm().getAlgorithm().getId();
        } else {
            CMSEnvelopedData ed = new CMSEnvelopedData(der);
            store = ed.getRecipientInfos();
            alg = ed.getEncryptionAlgOID();
        }
        for (RecipientInformation ri : store.getRecipients()) {
            if (!ri.getRID().match(holder)) continue;
            Recipient r = ri instanceof KeyAgreeRecipientInformation
                ? new JceKeyAgreeEnvelopedRecipient(k).setProvider(BC)
                : new JceKeyTransEnvelopedRecipient(k).setProvider(BC);
            Files.write(Paths.get(f[3]), ri.getContent(r));
            return alg;
        }
        throw new IllegalStateException("no recipient matches the certificate");
    }
}
