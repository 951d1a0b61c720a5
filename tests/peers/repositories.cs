// What the .NET repositories of STORES.md do with a ring, run on Mono's System.Xml.Linq, so that
// dpwrap's bytes are checked against .NET's own serializer rather than against dpwrap's idea of it.
//
//   kvsecret-write FILE...          the value AzureKeyVaultKeyRingRepository.SaveKeyRingToAzureKeyVault
//                                   sets for these elements (XElement.Load of each file, in order)
//   kvsecret-read VALUEFILE OUTDIR  AzureKeyVaultKeyRingRepository.GetAllElements on a value: each
//                                   element it returns saved as OUTDIR/NNN.xml (key file layout)
//   blob-store BLOBFILE FILE        AzureBlobXmlRepository.StoreElement: BLOBFILE (absent or empty:
//                                   a new document) with the element of FILE added, saved again
//
// The repositories' logic is restated from their public sources (see STORES.md); only the storage
// calls are replaced by files.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Xml;
using System.Xml.Linq;

static class Repositories
{
    static int Main(string[] args)
    {
        switch (args[0])
        {
            case "kvsecret-write":
            {
                var doc = new XDocument();
                var root = new XElement("root");
                doc.Add(root);
                for (int i = 1; i < args.Length; i++) root.Add(XElement.Load(args[i]));
                Console.Write(Convert.ToBase64String(Encoding.UTF8.GetBytes(doc.ToString())));
                return 0;
            }
            case "kvsecret-read":
            {
                string encoded = File.ReadAllText(args[1]);
                string decoded = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
                XDocument doc = XDocument.Parse(decoded);
                var entries = new List<XElement>();
                foreach (XElement node in doc.Root.Elements())
                {
                    switch (node.Name.ToString())
                    {
                        case "key":
                            var created = DateTime.Parse(node.Element("creationDate").Value);
                            if (DateTime.Now.Subtract(created).Days <= 180) entries.Add(node);
                            break;
                        case "revocation":
                            var revDate = DateTime.Parse(node.Element("revocationDate").Value);
                            if (DateTime.Now.Subtract(revDate).Days <= 180) entries.Add(node);
                            break;
                        default:
                            entries.Add(node);
                            break;
                    }
                }
                Directory.CreateDirectory(args[2]);
                for (int i = 0; i < entries.Count; i++)
                    entries[i].Save(Path.Combine(args[2], i.ToString("D3") + ".xml"));
                Console.Write(entries.Count);
                return 0;
            }
            case "blob-store":
            {
                XDocument doc;
                if (!File.Exists(args[1]) || new FileInfo(args[1]).Length == 0)
                {
                    doc = new XDocument(new XElement("repository"));
                }
                else
                {
                    var settings = new XmlReaderSettings
                    {
                        DtdProcessing = DtdProcessing.Prohibit,
                        IgnoreProcessingInstructions = true,
                    };
                    using (var stream = new MemoryStream(File.ReadAllBytes(args[1])))
                    using (var reader = XmlReader.Create(stream, settings))
                        doc = XDocument.Load(reader);
                }
                doc.Root.Add(XElement.Load(args[2]));
                var serialized = new MemoryStream();
                doc.Save(serialized, SaveOptions.DisableFormatting);
                File.WriteAllBytes(args[1], serialized.ToArray());
                return 0;
            }
        }
        Console.Error.WriteLine("unknown command " + args[0]);
        return 2;
    }
}
