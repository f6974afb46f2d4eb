// Bouncy Castle 1.72 S/MIME peer for test/smime/bouncy-castle-interop.test.ts.
// Run with the single-file launcher: java -cp CP BcSmime.java MODE ARGS...
//   verify IN                 -> one line "SIGNER-OK <subject>" per verified signer (exit 1 on any failure)
//   sign CERT KEY IN OUT      -> multipart/signed (SHA256withRSA) of IN's content, IN's headers kept
//   decrypt CERT KEY IN       -> decrypted entity bytes on stdout
//   encrypt CERT IN OUT       -> enveloped-data (AES-128-CBC, RSA-OAEP SHA-256) of IN's content
import java.io.*;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.util.*;
import jakarta.mail.*;
import jakarta.mail.internet.*;
import org.bouncycastle.asn1.*;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaCertStore;
import org.bouncycastle.cms.*;
import org.bouncycastle.cms.jcajce.*;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.mail.smime.*;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.operator.jcajce.JcaAlgorithmParametersConverter;
import org.bouncycastle.util.Store;

public class BcSmime {
  static X509Certificate cert(String path) throws Exception {
    try (InputStream in = new FileInputStream(path)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }
  static PrivateKey key(String path) throws Exception {
    try (PEMParser p = new PEMParser(new FileReader(path))) {
      return new JcaPEMKeyConverter().setProvider("BC").getPrivateKey((PrivateKeyInfo) p.readObject());
    }
  }
  static MimeMessage read(String path) throws Exception {
    try (InputStream in = new FileInputStream(path)) {
      return new MimeMessage(Session.getDefaultInstance(new Properties()), in);
    }
  }
  static MimeBodyPart content(MimeMessage m) throws Exception {
    MimeBodyPart part = new MimeBodyPart();
    part.setContent(m.getContent(), m.getContentType());
    String cte = m.getHeader("Content-Transfer-Encoding", null);
    if (cte != null) part.setHeader("Content-Transfer-Encoding", cte);
    return part;
  }
  static void write(MimeMessage src, MimeBodyPart body, String out) throws Exception {
    MimeMessage m = new MimeMessage(Session.getDefaultInstance(new Properties()));
    for (Enumeration<?> e = src.getAllHeaders(); e.hasMoreElements();) {
      Header h = (Header) e.nextElement();
      if (!h.getName().toLowerCase().startsWith("content-")) m.addHeader(h.getName(), h.getValue());
    }
    m.setContent(body.getContent(), body.getContentType());
    String cte = body.getHeader("Content-Transfer-Encoding", null);
    if (cte != null) m.setHeader("Content-Transfer-Encoding", cte);
    m.saveChanges();
    try (OutputStream o = new FileOutputStream(out)) { m.writeTo(o); }
  }

  public static void main(String[] a) throws Exception {
    Security.addProvider(new BouncyCastleProvider());
    switch (a[0]) {
      case "verify": {
        MimeMessage m = read(a[1]);
        SMIMESigned s = m.isMimeType("multipart/signed") ? new SMIMESigned((MimeMultipart) m.getContent()) : new SMIMESigned(m);
        Store<X509CertificateHolder> certs = s.getCertificates();
        int ok = 0;
        for (SignerInformation si : s.getSignerInfos().getSigners()) {
          X509CertificateHolder c = (X509CertificateHolder) certs.getMatches(si.getSID()).iterator().next();
          if (!si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(c))) { System.out.println("SIGNER-BAD " + c.getSubject()); System.exit(1); }
          System.out.println("SIGNER-OK " + c.getSubject());
          ok++;
        }
        if (ok == 0) System.exit(1);
        break;
      }
      case "sign": {
        X509Certificate c = cert(a[1]);
        SMIMESignedGenerator g = new SMIMESignedGenerator();
        g.addSignerInfoGenerator(new JcaSimpleSignerInfoGeneratorBuilder().setProvider("BC").build("SHA256withRSA", key(a[2]), c));
        g.addCertificates(new JcaCertStore(List.of(c)));
        MimeMessage src = read(a[3]);
        MimeMultipart mm = g.generate(content(src));
        MimeBodyPart holder = new MimeBodyPart();
        holder.setContent(mm, mm.getContentType());
        write(src, holder, a[4]);
        break;
      }
      case "decrypt": {
        X509Certificate c = cert(a[1]);
        SMIMEEnveloped env = new SMIMEEnveloped(read(a[3]));
        RecipientInformation r = env.getRecipientInfos().get(new JceKeyTransRecipientId(c));
        byte[] out = r.getContent(new JceKeyTransEnvelopedRecipient(key(a[2])).setProvider("BC"));
        System.out.write(out);
        System.out.flush();
        break;
      }
      case "encrypt": {
        X509Certificate c = cert(a[1]);
        SMIMEEnvelopedGenerator g = new SMIMEEnvelopedGenerator();
        JcaAlgorithmParametersConverter conv = new JcaAlgorithmParametersConverter();
        AlgorithmIdentifier oaep = conv.getAlgorithmIdentifier(org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers.id_RSAES_OAEP,
            new javax.crypto.spec.OAEPParameterSpec("SHA-256", "MGF1", java.security.spec.MGF1ParameterSpec.SHA256, javax.crypto.spec.PSource.PSpecified.DEFAULT));
        g.addRecipientInfoGenerator(new JceKeyTransRecipientInfoGenerator(c, oaep).setProvider("BC"));
        MimeMessage src = read(a[2]);
        MimeBodyPart body = g.generate(content(src), new JceCMSContentEncryptorBuilder(CMSAlgorithm.AES128_CBC).setProvider("BC").build());
        write(src, body, a[3]);
        break;
      }
      default: throw new IllegalArgumentException(a[0]);
    }
  }
}
