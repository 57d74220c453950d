package dev.shade.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeException;
import dev.shade.offhost.tape.TapeFileInfo;
import dev.shade.offhost.tape.TapeInputStream;
import dev.shade.offhost.tape.TapeLabel;
import dev.shade.offhost.tape.TapeLibrary;
import dev.shade.offhost.tape.TapeStatus;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade tape}: virtual tape libraries and Linux tape drives. */
@Command(
    name = "tape",
    header = "Create and inspect virtual tape libraries; read tape files; query tape drives.",
    description = {
      "A virtual tape library is a directory of cartridge files in numbered slots (from 1) and "
          + "drives (from 0): each cartridge holds records and filemarks, has a capacity with an "
          + "early-warning zone before its end, and a label in tape file 0. It serves tests and "
          + "staging backups on disk. Real drives are Linux st devices (--device /dev/nst0).",
      "",
      "docs/tapes.md describes the cartridge format and the end-of-medium rules."
    },
    mixinStandardHelpOptions = true,
    subcommands = {
      TapeCommand.Library.class,
      TapeCommand.Status.class,
      TapeCommand.ListCartridges.class,
      TapeCommand.Load.class,
      TapeCommand.Unload.class,
      TapeCommand.Label.class,
      TapeCommand.Cat.class
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  shade tape library create /srv/vtl --slots 8 --capacity 10G",
      "  shade tape label /srv/vtl --all-blank --label SHD --pool nightly",
      "  shade tape load /srv/vtl 1",
      "  shade tape list /srv/vtl --json",
      "  shade tape cat /srv/vtl SHD001 0 | tar -xO",
      "  shade tape status --device /dev/nst0"
    })
final class TapeCommand extends CommandGroup {

  /** Opens the library in {@code dir}, saying what is there instead when it is not one. */
  static VirtualTapeLibrary open(Path dir) throws IOException, CommandException {
    if (!Files.exists(dir)) {
      throw new CommandException("tape library directory does not exist: " + dir);
    }
    if (!VirtualTapeLibrary.isLibrary(dir)) {
      throw new CommandException("not a tape library (no library.properties; create one with "
          + "'shade tape library create'): " + dir);
    }
    return VirtualTapeLibrary.open(dir);
  }

  /** A cartridge as one JSON object. */
  static ObjectNode cartridgeJson(CartridgeInfo c) {
    ObjectNode o = VolumeAccess.JSON.createObjectNode().put("slot", c.slot());
    o.put("label", c.label()).put("pool", c.pool()).put("sequence", c.sequence());
    if (c.loadedIn() >= 0) {
      o.put("drive", c.loadedIn());
    } else {
      o.putNull("drive");
    }
    o.put("capacity", c.capacity()).put("usedBytes", c.usedBytes()).put("earlyWarning", c.earlyWarning());
    ArrayNode files = o.putArray("files");
    for (TapeFileInfo f : c.files()) {
      files.addObject().put("fileNumber", f.fileNumber()).put("kind", f.kind()).put("bytes", f.bytes())
          .put("records", f.records()).put("firstBlock", f.firstBlock()).put("closed", f.closed());
    }
    return o;
  }

  static String describe(CartridgeInfo c) {
    if (c.blank() && !c.files().isEmpty()) {
      return "cartridge without a shade label, holding data";
    }
    return c.blank() ? "blank cartridge" : "cartridge " + c.label() + " (pool " + c.pool() + ")";
  }

  /** {@code shade tape library}. */
  @Command(name = "library", header = "Create virtual tape libraries.", mixinStandardHelpOptions = true,
      subcommands = {TapeCommand.Library.Create.class})
  static final class Library extends CommandGroup {
    /** {@code shade tape library create}. */
    @Command(
        name = "create",
        header = "Create a virtual tape library: slots of blank cartridges and empty drives.",
        description = {
          "DIR is created if missing and must be empty otherwise. It gets library.properties, a "
              + "lock file and one cartridge file per slot (slot-0001.tape, ...). Cartridge files "
              + "grow as data is written; SIZE is what each may hold.",
          "",
          "The early warning comes when a cartridge's data reaches the last --early-warning bytes "
              + "of its capacity; after it, writes get that zone less one block as room for a trailer."
        },
        mixinStandardHelpOptions = true,
        footerHeading = "%nExamples:%n",
        footer = {
          "  shade tape library create /srv/vtl --slots 8 --capacity 10G",
          "  shade tape library create /tmp/vtl --slots 2 --capacity 64M --drives 2 --block-size 64K"
        })
    static final class Create extends ShadeCommand {
      @Parameters(index = "0", paramLabel = "DIR", description = "Directory for the new library.")
      Path dir;

      @Option(names = "--slots", paramLabel = "N", required = true, description = "Cartridge slots (1 to 9999).")
      int slots;

      @Option(names = "--capacity", paramLabel = "SIZE", required = true, converter = Sizes.class,
          description = "What each cartridge holds, e.g. 10G (K/M/G/T are powers of 1024).")
      long capacity;

      @Option(names = "--drives", paramLabel = "N", defaultValue = "1", description = "Drives (1 to 16).")
      int drives;

      @Option(names = "--block-size", paramLabel = "SIZE", converter = Sizes.class, defaultValue = "256K",
          description = "The drives' largest record.")
      long blockSize;

      @Option(names = "--early-warning", paramLabel = "SIZE", converter = Sizes.class,
          description = "Size of the early-warning zone. Default: an eighth of the capacity, at most 64M, "
              + "at least two blocks.")
      Long earlyWarning;

      @Option(names = "--json", description = "Print the new library as 'shade tape status --json' does.")
      boolean json;

      @Override
      public Integer call() throws Exception {
        if (blockSize > Integer.MAX_VALUE) {
          throw usage("block size must be 512 bytes to 16 MiB: " + blockSize);
        }
        LibraryConfig config;
        try {
          config = new LibraryConfig(slots, drives, capacity,
              earlyWarning != null ? earlyWarning : LibraryConfig.defaultEarlyWarningZone(capacity, (int) blockSize),
              (int) blockSize);
        } catch (IllegalArgumentException e) {
          throw usage(e.getMessage());
        }
        boolean existed = Files.exists(dir);
        VirtualTapeLibrary lib;
        try {
          lib = VirtualTapeLibrary.create(dir, config);
        } catch (IOException | RuntimeException e) {
          if (!existed && !VirtualTapeLibrary.isLibrary(dir)) {
            try {
              deleteTree(dir, false);
            } catch (IOException cleanup) {
              e.addSuppressed(cleanup);
            }
          }
          throw e;
        }
        try (lib) {
          if (json) {
            printJson(Status.libraryJson(lib));
          } else {
            out().printf("Created tape library %s: %d slot%s of blank %s cartridges, %d drive%s, %s blocks, "
                    + "early warning %s before the end.%n", dir, slots, slots == 1 ? "" : "s", Sizes.format(capacity),
                drives, drives == 1 ? "" : "s", Sizes.format(blockSize), Sizes.format(config.earlyWarningZone()));
            out().flush();
          }
        }
        return ExitCodes.OK;
      }
    }
  }

  /** {@code shade tape status}. */
  @Command(
      name = "status",
      header = "Show a library's drives and cartridges, or a tape drive's position and state.",
      description = {
        "With --device, opens the device read-only in variable block mode and shows its file and "
            + "block number and its BOT/EOD/early-warning/write-protect flags (as 'mt status'), then reads "
            + "the label of the cartridge in it (tape file 0; the tape is rewound) and what shade remembers of "
            + "it (its tape files); a cartridge not seen before is remembered from now on "
            + "(/var/lib/shade/drives/DEVNAME.json)."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade tape status /srv/vtl", "  shade tape status /srv/vtl --json", "  shade tape status --device /dev/nst0"})
  static final class Status extends ShadeCommand {
    @Parameters(index = "0", arity = "0..1", paramLabel = "LIB", description = "The virtual tape library's directory.")
    Path library;

    @Option(names = "--device", paramLabel = "DEV", description = "A Linux tape device instead, e.g. /dev/nst0 "
        + "(the no-rewind one).")
    Path device;

    @Option(names = "--json", description = "Print one JSON object: library, slots, capacity, blockSize, "
        + "earlyWarningZone, trailerBytes, drives [{drive, slot, label, pool}], labelled, blank; with --device: "
        + "device, fileNumber, blockNumber, beginningOfTape, endOfData, earlyWarning, writeProtected, cartridge "
        + "(as in 'shade tape list --json', with capacity 0 for unknown; null when the drive is empty).")
    boolean json;

    static ObjectNode libraryJson(VirtualTapeLibrary lib) throws IOException {
      LibraryConfig c = lib.config();
      ObjectNode o = VolumeAccess.JSON.createObjectNode().put("library", lib.directory().toAbsolutePath().toString())
          .put("slots", c.slots()).put("capacity", c.capacity()).put("blockSize", c.blockSize())
          .put("earlyWarningZone", c.earlyWarningZone()).put("trailerBytes", c.trailerBytes())
          .put("created", lib.created().toString());
      ArrayNode drives = o.putArray("drives");
      for (int d = 0; d < c.drives(); d++) {
        ObjectNode drive = drives.addObject().put("drive", d);
        OptionalInt slot = lib.loadedSlot(d);
        if (slot.isPresent()) {
          CartridgeInfo info = lib.cartridgeInfo(slot.getAsInt());
          drive.put("slot", slot.getAsInt()).put("label", info.label()).put("pool", info.pool())
              .put("usedBytes", info.usedBytes()).put("files", info.files().size());
        } else {
          drive.putNull("slot");
        }
      }
      int labelled = 0;
      for (CartridgeInfo ci : lib.list()) {
        labelled += ci.blank() ? 0 : 1;
      }
      o.put("labelled", labelled).put("blank", c.slots() - labelled);
      return o;
    }

    @Override
    public Integer call() throws Exception {
      if ((library == null) == (device == null)) {
        throw usage(device != null ? "LIB and --device are mutually exclusive: give one"
            : "missing LIB: give the library's directory, or --device");
      }
      if (device != null) {
        return deviceStatus(device);
      }
      try (VirtualTapeLibrary lib = open(library)) {
        ObjectNode doc = libraryJson(lib);
        if (json) {
          printJson(doc);
          return ExitCodes.OK;
        }
        LibraryConfig c = lib.config();
        out().printf("library   %s%n", doc.get("library").asText());
        out().printf("slots     %d (%d labelled, %d blank), cartridges of %s%n", c.slots(), doc.get("labelled").asInt(),
            doc.get("blank").asInt(), Sizes.format(c.capacity()));
        out().printf("blocks    %s; early warning %s before the end, then %s of trailer%n",
            Sizes.format(c.blockSize()), Sizes.format(c.earlyWarningZone()), Sizes.format(c.trailerBytes()));
        for (var d : doc.get("drives")) {
          if (d.get("slot").isNull()) {
            out().printf("drive %d   empty%n", d.get("drive").asInt());
          } else {
            out().printf("drive %d   slot %d, %s, %s used, %d file%s%n", d.get("drive").asInt(), d.get("slot").asInt(),
                d.get("label").isNull() ? "blank" : d.get("label").asText() + " (pool " + d.get("pool").asText() + ")",
                Sizes.format(d.get("usedBytes").asLong()), d.get("files").asInt(), d.get("files").asInt() == 1 ? "" : "s");
          }
        }
        out().flush();
      }
      return ExitCodes.OK;
    }

    private int deviceStatus(Path device) throws IOException, CommandException {
      TapeStatus s;
      try (TapeDrive d = TapeDrive.openDeviceReadOnly(device)) {
        s = d.status();
      }
      CartridgeInfo in = null;
      try (TapeLibrary lib = DeviceOption.openWithoutOperator(device)) {
        OptionalInt slot = lib.loadedSlot(0);
        if (slot.isPresent()) {
          in = lib.cartridgeInfo(slot.getAsInt());
        }
      }
      {
        if (json) {
          ObjectNode o = VolumeAccess.JSON.createObjectNode().put("device", device.toString())
              .put("fileNumber", s.fileNumber()).put("blockNumber", s.blockNumber())
              .put("beginningOfTape", s.beginningOfTape()).put("endOfData", s.endOfData())
              .put("earlyWarning", s.earlyWarning()).put("writeProtected", s.writeProtected());
          if (in == null) {
            o.putNull("cartridge");
          } else {
            o.set("cartridge", cartridgeJson(in));
          }
          printJson(o);
        } else {
          List<String> flags = new ArrayList<>();
          if (s.beginningOfTape()) {
            flags.add("BOT");
          }
          if (s.endOfData()) {
            flags.add("EOD");
          }
          if (s.earlyWarning()) {
            flags.add("EOT");
          }
          if (s.writeProtected()) {
            flags.add("WR_PROT");
          }
          out().printf("%s: file %d, block %d%s%n", device, s.fileNumber(), s.blockNumber(),
              flags.isEmpty() ? "" : ", " + String.join(" ", flags));
          if (in == null) {
            out().printf("%s: no cartridge%n", device);
          } else {
            out().printf("%s: %s%s, %s in %d tape file%s%n", device, describe(in),
                in.blank() ? "" : ", sequence " + in.sequence(), Sizes.format(in.usedBytes()), in.files().size(),
                in.files().size() == 1 ? "" : "s");
          }
          out().flush();
        }
      }
      return ExitCodes.OK;
    }
  }

  /** {@code shade tape list}. */
  @Command(
      name = "list",
      header = "List a library's cartridges and the files on each.",
      description = {
        "A file's kind is what it holds: 'label' for file 0 of a labelled cartridge, the name of a "
            + "shade archive's first member (shade-KIND.json), 'empty', or 'data' for anything else."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade tape list /srv/vtl", "  shade tape list /srv/vtl --json", "  shade tape list --device /dev/nst0"})
  static final class ListCartridges extends ShadeCommand {
    @Parameters(index = "0", arity = "0..1", paramLabel = "LIB", description = "The virtual tape library's directory.")
    Path library;

    @Option(names = "--device", paramLabel = "DEV", description = "A tape drive instead (/dev/nst0): the cartridges "
        + "it has seen, as remembered, and the one in it (read again if not known). Capacity is 0: a drive does not "
        + "say.")
    Path device;

    @Option(names = "--json", description = "Print one JSON object: {library, cartridges: [{slot, label, pool, "
        + "sequence, drive, capacity, usedBytes, earlyWarning, files: [{fileNumber, kind, bytes, records, "
        + "firstBlock, closed}]}]}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      if ((library == null) == (device == null)) {
        throw usage(device != null ? "LIB and --device are mutually exclusive: give one"
            : "missing LIB: give the library's directory, or --device");
      }
      try (TapeLibrary lib = device != null ? DeviceOption.openWithoutOperator(device) : open(library)) {
        List<CartridgeInfo> all = lib.list();
        if (json) {
          ObjectNode doc = VolumeAccess.JSON.createObjectNode().put("library", lib.directory().toAbsolutePath().toString());
          ArrayNode carts = doc.putArray("cartridges");
          all.forEach(c -> carts.add(cartridgeJson(c)));
          printJson(doc);
          return ExitCodes.OK;
        }
        out().printf("%4s  %-12s %-12s %4s  %-5s  %s%n", "slot", "label", "pool", "seq", "drive", "used");
        for (CartridgeInfo c : all) {
          out().printf("%4d  %-12s %-12s %4s  %-5s  %s of %s, %d file%s%n", c.slot(), c.blank() ? "-" : c.label(),
              c.blank() ? "-" : c.pool(), c.blank() ? "-" : Integer.toString(c.sequence()),
              c.loadedIn() < 0 ? "-" : Integer.toString(c.loadedIn()), Sizes.format(c.usedBytes()),
              Sizes.format(c.capacity()), c.files().size(), c.files().size() == 1 ? "" : "s");
          for (TapeFileInfo f : c.files()) {
            out().printf("        file %-4d %-10s %s in %d record%s%s%n", f.fileNumber(), f.kind(), Sizes.format(f.bytes()),
                f.records(), f.records() == 1 ? "" : "s", f.closed() ? "" : " (no filemark after it)");
          }
        }
        out().flush();
      }
      return ExitCodes.OK;
    }
  }

  /** {@code shade tape load}. */
  @Command(name = "load", header = "Move a cartridge from its slot into a drive.",
      description = {"The library remembers which slot is in which drive until 'shade tape unload'."},
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade tape load /srv/vtl 3", "  shade tape load /srv/vtl 4 --drive 1"})
  static final class Load extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "LIB", description = "The virtual tape library's directory.")
    Path library;

    @Parameters(index = "1", paramLabel = "SLOT", description = "The cartridge's slot, from 1.")
    int slot;

    @Option(names = "--drive", paramLabel = "N", defaultValue = "0", description = "The drive.")
    int drive;

    @Override
    public Integer call() throws Exception {
      try (VirtualTapeLibrary lib = open(library)) {
        lib.load(drive, slot);
        out().printf("Loaded slot %d (%s) into drive %d.%n", slot, describe(lib.cartridgeInfo(slot)), drive);
        out().flush();
      }
      return ExitCodes.OK;
    }
  }

  /** {@code shade tape unload}. */
  @Command(name = "unload", header = "Put the cartridge in a drive back into its slot.",
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade tape unload /srv/vtl", "  shade tape unload /srv/vtl --drive 1"})
  static final class Unload extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "LIB", description = "The virtual tape library's directory.")
    Path library;

    @Option(names = "--drive", paramLabel = "N", defaultValue = "0", description = "The drive.")
    int drive;

    @Override
    public Integer call() throws Exception {
      try (VirtualTapeLibrary lib = open(library)) {
        OptionalInt slot = lib.loadedSlot(drive);
        lib.unload(drive);
        out().printf("Unloaded drive %d: slot %d (%s) is back in its slot.%n", drive, slot.getAsInt(),
            describe(lib.cartridgeInfo(slot.getAsInt())));
        out().flush();
      }
      return ExitCodes.OK;
    }
  }

  /** {@code shade tape label}. */
  @Command(
      name = "label",
      header = "Label cartridges: write tape file 0, a small tar naming the cartridge and its pool.",
      description = {
        "The label is a PAX tar with one member, shade-label.json: {label, pool, sequence, created, "
            + "format}; 'shade tape cat LIB LABEL 0 | tar -xO' shows it. The sequence counts the "
            + "cartridges of a pool from 1. Labelling writes at the beginning of the tape, so "
            + "everything on it is lost: a labelled cartridge is relabelled only with --force."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade tape label /srv/vtl 1 --label SHD001 --pool nightly",
        "  shade tape label /srv/vtl --all-blank --label SHD --pool nightly",
        "  shade tape label /srv/vtl 1 --label SHD101 --pool weekly --force   # erases slot 1",
        "  shade tape label --device /dev/nst0 --label SHD001 --pool nightly  # the cartridge in the drive"
      })
  static final class Label extends ShadeCommand {
    @Parameters(arity = "0..2", paramLabel = "LIB SLOT",
        description = "The virtual tape library's directory and the cartridge's slot, from 1 (or --all-blank); "
            + "none with --device.")
    List<String> args;

    @Option(names = "--device", paramLabel = "DEV", description = "Label the cartridge in this tape drive (/dev/nst0) "
        + "instead.")
    Path device;

    /** LIB, from args. */
    Path library;
    /** SLOT, from args. */
    Integer slot;

    @Option(names = "--all-blank", description = "Every blank cartridge; --label is then a prefix, followed by "
        + "the slot number in three digits (SHD -> SHD001, SHD002, ...).")
    boolean allBlank;

    @Option(names = "--label", paramLabel = "LABEL", required = true,
        description = "The label (1 to 32 of A-Z a-z 0-9 . _ -), or with --all-blank its prefix.")
    String label;

    @Option(names = "--pool", paramLabel = "POOL", required = true, description = "The media pool.")
    String pool;

    @Option(names = "--force", description = "Relabel a labelled cartridge, erasing it.")
    boolean force;

    @Option(names = "--json", description = "Print one JSON object: {labelled: [{slot, label, pool, sequence, "
        + "created, format}]}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      List<String> given = args == null ? List.of() : args;
      if (device != null) {
        if (!given.isEmpty()) {
          throw usage("with --device give no LIB or SLOT: the cartridge in the drive is labelled");
        }
        if (allBlank) {
          throw usage("--all-blank goes with a library: a drive holds one cartridge");
        }
        return labelInDrive();
      }
      if (given.isEmpty()) {
        throw usage("missing LIB: give the library's directory, or --device");
      }
      library = Path.of(given.get(0));
      if (given.size() > 1) {
        try {
          slot = Integer.valueOf(given.get(1));
        } catch (NumberFormatException e) {
          throw usage("SLOT must be a whole number from 1: " + given.get(1));
        }
      }
      if ((slot == null) == !allBlank) {
        throw usage(allBlank ? "SLOT and --all-blank are mutually exclusive: give one"
            : "missing SLOT: give the cartridge's slot, or --all-blank");
      }
      try {
        TapeLabel.requireName("pool", pool);
        TapeLabel.requireName(allBlank ? "label prefix" : "label", label);
      } catch (IllegalArgumentException e) {
        throw usage(e.getMessage());
      }
      List<Object[]> done = new ArrayList<>();
      try (VirtualTapeLibrary lib = open(library)) {
        List<Integer> slots = new ArrayList<>();
        if (allBlank) {
          for (CartridgeInfo c : lib.list()) {
            if (c.blank()) {
              slots.add(c.slot());
            }
          }
        } else {
          slots.add(slot);
        }
        for (int slot : slots) {
          String name = allBlank ? label + String.format("%03d", slot) : label;
          done.add(new Object[] {slot, lib.writeLabel(slot, name, pool, force)});
        }
      }
      if (json) {
        ObjectNode doc = VolumeAccess.JSON.createObjectNode();
        ArrayNode list = doc.putArray("labelled");
        for (Object[] d : done) {
          TapeLabel l = (TapeLabel) d[1];
          list.addObject().put("slot", (Integer) d[0]).put("label", l.label()).put("pool", l.pool())
              .put("sequence", l.sequence()).put("created", l.created().toString()).put("format", l.format());
        }
        printJson(doc);
        return ExitCodes.OK;
      }
      if (done.isEmpty()) {
        out().println("No blank cartridges to label.");
      }
      for (Object[] d : done) {
        TapeLabel l = (TapeLabel) d[1];
        out().printf("Labelled slot %d '%s' (pool %s, sequence %d).%n", (Integer) d[0], l.label(), l.pool(), l.sequence());
      }
      out().flush();
      return ExitCodes.OK;
    }

    /** Labels the cartridge in the drive {@code device}. */
    private int labelInDrive() throws Exception {
      try {
        TapeLabel.requireName("pool", pool);
        TapeLabel.requireName("label", label);
      } catch (IllegalArgumentException e) {
        throw usage(e.getMessage());
      }
      TapeLabel l;
      try (TapeLibrary lib = DeviceOption.openWithoutOperator(device)) {
        OptionalInt in = lib.loadedSlot(0);
        if (in.isEmpty()) {
          throw new CommandException("no cartridge in tape drive " + device + ": load one first");
        }
        CartridgeInfo c = lib.cartridgeInfo(in.getAsInt());
        if (!force && c.blank() && !c.files().isEmpty()) {
          throw new CommandException("the cartridge in " + device + " holds data but no shade label (another "
              + "program's tape, or a cartridge labelled elsewhere); --force labels it, erasing that data");
        }
        l = lib.writeLabel(in.getAsInt(), label, pool, force);
      }
      if (json) {
        ObjectNode doc = VolumeAccess.JSON.createObjectNode();
        doc.putArray("labelled").addObject().put("device", device.toString()).put("label", l.label())
            .put("pool", l.pool()).put("sequence", l.sequence()).put("created", l.created().toString())
            .put("format", l.format());
        printJson(doc);
        return ExitCodes.OK;
      }
      out().printf("Labelled the cartridge in %s '%s' (pool %s, sequence %d).%n", device, l.label(), l.pool(),
          l.sequence());
      out().flush();
      return ExitCodes.OK;
    }
  }

  /** {@code shade tape cat}. */
  @Command(
      name = "cat",
      header = "Write one tape file to standard output, as reading it from a drive would.",
      description = {
        "The bytes of the file's records, in order, up to its filemark: for a shade tape file a tar "
            + "stream, so 'shade tape cat LIB LABEL N | tar -t' works as 'tar -t -f /dev/nst0' does on "
            + "a drive positioned at file N. The cartridge is read where it is (in its slot or in a "
            + "drive) and does not move. With --device, the drive's tape is rewound and spaced to file N."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade tape cat /srv/vtl SHD001 0 | tar -xO        # the label",
        "  shade tape cat /srv/vtl SHD001 1 | tar -tv",
        "  shade tape cat --device /dev/nst0 1 | tar -t"
      })
  static final class Cat extends ShadeCommand {
    @Parameters(paramLabel = "LIB LABEL FILENO", arity = "1..3",
        description = "The library's directory, the cartridge's label and the file number; with --device only "
            + "the file number.")
    List<String> args;

    @Option(names = "--device", paramLabel = "DEV", description = "Read from a Linux tape device, e.g. /dev/nst0.")
    Path device;

    @Override
    public Integer call() throws Exception {
      int expected = device != null ? 1 : 3;
      if (args.size() != expected) {
        throw usage(device != null ? "with --device give only FILENO" : "expected LIB LABEL FILENO");
      }
      int fileNumber;
      try {
        fileNumber = Integer.parseInt(args.get(expected - 1));
      } catch (NumberFormatException e) {
        throw usage("file number must be a whole number from 0: " + args.get(expected - 1));
      }
      if (fileNumber < 0) {
        throw usage("file number must be a whole number from 0: " + fileNumber);
      }
      if (device != null) {
        try (TapeDrive d = TapeDrive.openDeviceReadOnly(device)) {
          copy(d, fileNumber);
        }
        return ExitCodes.OK;
      }
      String label = args.get(1);
      try (VirtualTapeLibrary lib = open(Path.of(args.get(0)))) {
        Optional<CartridgeInfo> c = lib.find(label);
        if (c.isEmpty()) {
          throw new CommandException("no cartridge labelled '" + label + "' in tape library " + args.get(0));
        }
        int files = c.get().files().size();
        if (fileNumber >= files) {
          throw new CommandException("cartridge " + label + " has " + files + " file" + (files == 1 ? "" : "s")
              + " (0 to " + (files - 1) + "), so there is no file " + fileNumber);
        }
        try (TapeDrive d = lib.openForReading(c.get().slot())) {
          copy(d, fileNumber);
        }
      }
      return ExitCodes.OK;
    }

    /**
     * Copies tape file {@code n} to standard output, raw. A reader that stops early (tar stops at
     * the end-of-archive blocks, before the padding of the last record; head) ends the copy quietly.
     */
    private void copy(TapeDrive d, int n) throws IOException {
      d.seekFile(n);
      OutputStream out = ((Shade) spec.root().userObject()).binaryOut();
      TapeInputStream in = new TapeInputStream(d);
      byte[] buf = new byte[d.blockSize()];
      int r;
      try {
        while ((r = in.read(buf, 0, buf.length)) > 0) {
          out.write(buf, 0, r);
        }
        out.flush();
      } catch (IOException e) {
        if (e.getMessage() != null && e.getMessage().contains("Broken pipe") && !(e instanceof TapeException)) {
          return;
        }
        throw e;
      }
    }
  }
}
