"""Term patterns for prompt moderation (English and German), written against normalised text.

Normalised text is lower case ASCII with German umlauts spelled out (ae, oe, ue, ss), look-alike
letters mapped, leetspeak undone and separators between single letters removed (see
:func:`tenku.safety.moderation.normalise`). Each entry is a regular expression matched with word
boundaries on both sides; ``\\w*`` suffixes cover inflections.
"""

from __future__ import annotations

# A person (EN + DE), used by rules that only fire when harm is aimed at people.
PERSON = (r"(?:person|people|man|men|woman|women|child|children|kid|kids|boy|girl|baby|guy|someone|somebody|"
          r"him|her|them|victim|human|humans|soldier|civilian|crowd|"
          r"mensch\w*|mann|maenner|frau|frauen|kind|kinder|kindern|junge\w*|maedchen|baby|jemand\w*|ihn|sie|opfer|leute|soldat\w*)")

SEXUAL = [
    r"porn\w*", r"porno\w*", r"xxx", r"nsfw", r"hentai", r"nude\w*", r"nudity", r"naked", r"topless",
    r"sex", r"sexual\w*", r"sexy", r"having sex", r"sex scene", r"intercourse", r"erotic\w*", r"orgasm\w*",
    r"genital\w*", r"penis\w*", r"vagina\w*", r"(?:bare|naked|her) breasts?", r"nipples?", r"blowjob\w*", r"masturbat\w*",
    r"strip ?tease", r"stripper\w*", r"onlyfans", r"fetish\w*", r"bdsm", r"undress\w*", r"lingerie",
    # German
    r"nackt\w*", r"sexszene\w*", r"geschlechtsverkehr", r"erotisch\w*", r"bruest\w*", r"brueste",
    r"ausgezogen\w*", r"entkleid\w*", r"sexuell\w*", r"muschi", r"schwanz lutsch\w*",
]

MINOR = [
    r"child\w*", r"kids?", r"minors?", r"underage\w*", r"under ?age", r"teen\w*", r"preteen\w*", r"schoolgirl\w*",
    r"schoolboy\w*", r"little (?:girl|boy)s?", r"toddler\w*", r"infant\w*", r"loli\w*", r"shota\w*",
    r"(?:[1-9]|1[0-7]) ?(?:years? old|yo|jahre alt|jaehrig\w*)",
    # German
    r"kinder", r"kindern", r"minderjaehrig\w*", r"schuelerin\w*", r"schueler", r"kleine[sr]? (?:maedchen|junge)",
    r"maedchen", r"jugendlich\w*",
]

SEXUAL_MINORS = [r"cp", r"child porn\w*", r"kinderporno\w*", r"pedo\w*", r"paedo\w*", r"paedophil\w*",
                 r"pedophil\w*", r"csam", r"loli ?hentai", r"kinderschaend\w*"]

VIOLENCE = [
    r"gore", r"gory", r"dismember\w*", r"decapitat\w*", r"behead\w*", r"disembowel\w*", r"mutilat\w*",
    r"eviscerat\w*", r"torture\w*", r"torturing", r"massacre\w*", r"slaughter\w* (?:of )?" + PERSON,
    r"blood ?bath", r"blood spatter\w*", r"guts (?:spill\w*|out)", r"severed (?:head|limb|arm|leg)s?",
    r"brains? (?:blown|splatter\w*)", r"executions?", r"mass shooting\w*", r"school shooting\w*",
    r"dead bod(?:y|ies) (?:of|covered)\w*", r"bleeding (?:out|to death)",
    r"(?:kill(?:s|ed|ing)?|murder\w*|stab(?:s|bed|bing)?|shoot\w*|shot|behead\w*|strangl\w*|butcher\w*|slash\w*|burn\w*|"
    r"tortur\w*|execut(?:e|es|ed|ing)|hang(?:s|ed|ing)?|lynch\w*|rape[sd]?|raping|beat\w* up) (?:(?:a|an|the|this|that|some|two|"
    r"three|many|all|his|her|their|innocent|young|old|little) )*" + PERSON,
    # German
    r"enthaupt\w*", r"zerstueckel\w*", r"verstuemmel\w*", r"blutbad\w*", r"gemetzel\w*", r"massaker\w*",
    r"folter\w*", r"hinrichtung\w*", r"amoklauf\w*", r"ausgeweidet\w*", r"abgetrennte\w* kopf\w*",
    r"(?:toet\w*|ermord\w*|ersticht|erstech\w*|erschiess\w*|erschoss\w*|erwuerg\w*|vergewaltig\w*|"
    r"schlachte\w*|verbrenn\w*|erhaeng\w*|zusammenschlag\w*) (?:(?:einen|eine|einem|einer|den|die|das|der|"
    r"dem|zwei|drei|viele|alle|unschuldige\w*|junge\w*|alte\w*|kleine\w*) )*" + PERSON,
    PERSON + r" (?:wird|werden) (?:getoetet|ermordet|erstochen|erschossen|enthauptet|gefoltert|hingerichtet)",
]

GROUP = (r"(?:jews?|jewish people|muslims?|christians?|blacks?|black people|whites?|asians?|arabs?|gays?|"
         r"lesbians?|trans people|transgender people|immigrants?|refugees?|mexicans?|africans?|roma|gypsies|"
         r"women|disabled people|"
         r"juden|muslime|christen|schwarze|weisse|asiaten|araber|schwule|lesben|auslaender|fluechtlinge|"
         r"migranten|frauen|behinderte)")

HATE = [
    r"(?:kill|exterminate|gas|lynch|deport|eradicate|wipe out|hate|burn) (?:all |the )?" + GROUP,
    GROUP + r" (?:are|is) (?:vermin|animals|subhuman|rats|parasites|inferior|disease|scum|cockroaches)",
    r"heil hitler", r"sieg heil", r"white power", r"master race", r"ethnic cleansing", r"racial purity",
    r"subhumans?", r"holocaust (?:denial|was fake|never happened|hoax)", r"gas chambers? (?:for|fuer) " + GROUP,
    r"swastika\w*", r"kkk", r"ku klux klan", r"nazi (?:propaganda|rally|salute)", r"hitlergruss",
    # German
    r"(?:toetet|vergast|vernichtet|hasst|verbrennt) (?:alle |die )?" + GROUP,
    GROUP + r" (?:sind|ist) (?:ungeziefer|tiere|untermenschen|ratten|parasiten|minderwertig|abschaum)",
    GROUP + r" raus", r"untermensch\w*", r"rassenhass\w*", r"judenhass\w*", r"hakenkreuz\w*",
    r"rassenreinheit", r"volksverraeter\w*",
]

SELF_HARM = [
    r"suicid\w*", r"kill(?:s|ing)? (?:myself|himself|herself|themselves|yourself)", r"self[ -]?harm\w*",
    r"cut(?:s|ting)? (?:myself|himself|herself|themselves|(?:his|her|their|my) wrists?)", r"slit\w* (?:\w+ )?wrists?",
    r"hang(?:s|ing)? (?:myself|himself|herself|themselves)", r"overdos\w*", r"self[ -]?injur\w*",
    r"jump\w* (?:off|from) (?:a |the )?(?:bridge|roof|building) to (?:die|end)", r"end (?:my|his|her) life",
    # German
    r"selbstmord\w*", r"suizid\w*", r"selbstverletz\w*", r"ritzen", r"ritzt sich\w*", r"pulsadern?",
    r"sich (?:das leben nehmen|umbringen|erhaengen|toeten)", r"bringt sich um", r"nimmt sich das leben",
    r"ueberdosis",
]

PUBLIC_FIGURES = [
    r"donald trump", r"trump", r"joe biden", r"biden", r"barack obama", r"obama", r"kamala harris",
    r"hillary clinton", r"bill clinton", r"george w?\.? ?bush", r"vladimir putin", r"putin", r"xi jinping",
    r"kim jong[ -]?un", r"volodymyr zelensk\w*", r"selenskyj", r"zelensky\w*", r"emmanuel macron", r"macron",
    r"angela merkel", r"merkel", r"olaf scholz", r"friedrich merz", r"keir starmer", r"rishi sunak",
    r"boris johnson", r"narendra modi", r"king charles", r"prince harry", r"pope francis", r"papst franziskus",
    r"pope leo", r"elon musk", r"mark zuckerberg", r"jeff bezos", r"bill gates", r"taylor swift", r"beyonce",
    r"kim kardashian", r"tom cruise", r"scarlett johansson", r"emma watson", r"leonardo dicaprio",
    r"brad pitt", r"rihanna", r"justin bieber", r"greta thunberg", r"oprah winfrey", r"netanyahu",
    r"erdogan", r"kanye west", r"cristiano ronaldo", r"lionel messi", r"dieter bohlen", r"helene fischer",
]

COPYRIGHTED_CHARACTERS = [
    r"mickey mouse", r"micky maus", r"minnie mouse", r"donald duck", r"super mario", r"mario bros\w*",
    r"luigi", r"princess peach", r"bowser", r"pikachu", r"pokemon\w*", r"spider[ -]?man", r"batman", r"superman",
    r"wonder woman", r"iron ?man", r"captain america", r"hulk", r"thor odinson", r"the joker", r"harley quinn",
    r"harry potter", r"hermione granger", r"voldemort", r"darth vader", r"yoda", r"luke skywalker", r"baby yoda",
    r"homer simpson", r"bart simpson", r"the simpsons", r"shrek", r"sonic the hedgehog", r"hello kitty",
    r"winnie the pooh", r"winnie puuh", r"bugs bunny", r"spongebob\w*", r"buzz lightyear", r"woody (?:from|and) toy story",
    r"elsa (?:from|of) frozen", r"olaf (?:from|of) frozen", r"simba", r"lara croft", r"master chief",
    r"peppa pig", r"paw patrol", r"biene maja", r"asterix", r"obelix", r"tim und struppi", r"tintin",
    r"james bond", r"gandalf", r"frodo", r"garfield", r"snoopy", r"scooby[ -]?doo", r"totoro", r"naruto",
]

CATEGORIES = {
    "sexual/minors": SEXUAL_MINORS,
    "sexual": SEXUAL,
    "violence/graphic": VIOLENCE,
    "hate": HATE,
    "self-harm": SELF_HARM,
    "public-figures": PUBLIC_FIGURES,
    "copyrighted-characters": COPYRIGHTED_CHARACTERS,
}

# Phrases that look like a category match but are benign; removed before matching.
BENIGN = [
    r"shoot\w* (?:a |the )?(?:film|movie|video|scene|photo\w*|picture\w*|footage|hoops|basket\w*|ball|goal)",
    r"(?:film|photo|video) shoot\w*", r"shot (?:of|from) (?:a |the )?", r"(?:wide|close|long|tracking|camera) shot",
    r"(?:einen )?film dreh\w*", r"execut\w* (?:a |the )?(?:plan|program|code|move|jump|turn|trick)",
    r"burn\w* (?:calories|rubber|the midnight oil)", r"sex (?:of|determination)", r"baby (?:bird|animal|duck|elephant)s?",
    r"trump card\w*", r"chicken breasts?",
    r"(?:hang\w*|hung) (?:a |the )?(?:picture|painting|lamp|coat|sign|flag)",
]
