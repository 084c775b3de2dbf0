"""Concepts for prompt moderation (English and German), written against normalised text.

Normalised text is lower-case ASCII words separated by single spaces, with German umlauts spelled
out (ae, oe, ue, ss); see :mod:`tenku.safety.normalize`. Each concept is a list of regular expressions
matched with a word boundary on both sides (``\\w*`` covers inflections and compounds where a compound
cannot be benign). :mod:`tenku.safety.moderation_rules` combines concepts into rules: a concept alone
(an explicit term), or two concepts together (a protected group + a dehumanising frame).
Names of real people and of copyrighted characters are in :mod:`tenku.safety.moderation_names`.
"""

from __future__ import annotations

import re

_DET = r"(?:(?:a|an|the|this|that|some|two|three|four|many|all|his|her|their|my|your|our|its|innocent|young|old|" \
       r"little|unarmed|helpless|defenceless|defenseless|small|poor|sleeping|pregnant|elderly|other|ein|eine|einen|" \
       r"einem|einer|den|die|das|der|dem|seine[nmrs]?|ihre[nmrs]?|zwei|drei|viele|alle|unschuldige\w*|junge\w*|" \
       r"alte\w*|kleine\w*|wehrlose\w*) )*"

PERSON = [
    r"person|people|man|men|woman|women|child|children|kids?|boys?|girls?|bab(?:y|ies)|guys?|someone|somebody|"
    r"anyone|him|her|them|victims?|humans?|soldiers?|civilians?|crowds?|wife|husband|mother|father|mom|dad|sons?|"
    r"daughters?|hostages?|prisoners?|journalists?|pedestrians?|villagers?|teen(?:ager)?s?|students?|pupils?|"
    r"neighbou?rs?|girlfriend|boyfriend|officers?|police(?:man|men|woman)?|protesters?|refugees?|migrants?|"
    r"immigrants?|worshippers?|passengers?|shoppers?|classmates?|teachers?|customers?|homeless|family|families|"
    r"toddlers?|infants?|patients?|priests?|nurses?|doctors?|workers?|guards?|captives?|"
    r"mensch\w*|mann|maenner\w*|frau|frauen|kind|kinder|kindern|jungen?|maedchen|jemand\w*|ihn|opfer|leute|"
    r"soldat\w*|zivilist\w*|nachbar\w*|geisel\w*|gefangene\w*|polizist\w*|schueler\w*|vater|mutter|sohn|tochter|"
    r"journalist\w*|passant\w*|dorfbewohner\w*|ehefrau|ehemann|freundin|familie|lehrer\w*|baby|babys|besucher\w*"
]

MINOR = [
    r"child|children|childs|kids?|kiddies|minors?|underage\w*|under age|teens?|teenagers?|teenage|preteens?|tweens?|"
    r"schoolgirls?|schoolboys?|school girls?|school boys?|little (?:girls?|boys?)|young (?:girls?|boys?)|toddlers?|"
    r"infants?|bab(?:y|ies)|lolis?|lolita|shota|jailbait|pupils?|juveniles?|"
    r"(?:[1-9]|1[0-7]) ?(?:-? ?years? ?-? ?olds?|yo|y o|jahre alt|jaehrige\w*|jaehrig)|"
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen) years? olds?|"
    r"(?:ein|zwei|drei|vier|fuenf|sechs|sieben|acht|neun|zehn|elf|zwoelf|dreizehn|vierzehn|fuenfzehn|sechzehn|"
    r"siebzehn)jaehrig\w*|"
    r"kind|kinder|kindern|kindes|minderjaehrig\w*|schuelerin\w*|schueler|schuelern|maedchen|maedels?|junge|jungen|"
    r"knaben?|jugendlich\w*|teenie\w*|kleinkind\w*|saeugling\w*|grundschuel\w*"
]
# Words that make a girl/boy/teen prompt a minor only together with a sexual context.
CSAM = [r"cp|child ?porn\w*|kinderporn\w*|kinder porn\w*|pedo\w*|paedo\w*|paedophil\w*|pedophil\w*|csam|"
        r"loli ?hentai|kinderschaend\w*|kindesmissbrauch\w*|child (?:sexual )?abuse material|jailbait"]

SEXUAL = [
    r"porn\w*|porno\w*|xxx|nsfw|hentai|nudes?|nudity|nudist\w*|naked\w*|topless|bottomless|full frontal|"
    r"having sex|have sex|has sex|sex (?:scene|video|tape|act|acts|with|on|in)|sex|sexually explicit|intercourse|"
    r"erotic\w*|erotik\w*|orgasm\w*|orgy|orgies|genital\w*|penis\w*|vagina\w*|vulva|clitoris|dildo\w*|"
    r"(?:bare|naked|nude|exposed|her) (?:breasts?|boobs|tits|chest)|boobs|tits|nipples?|blow ?jobs?|hand ?jobs?|"
    r"masturbat\w*|jerking off|touching (?:herself|himself|themselves)|strip ?teas\w*|stripping|strippers?|"
    r"strips naked|onlyfans|fetish\w*|bdsm|cum ?shots?|cumming|ejaculat\w*|moaning|sex ?toys?|"
    r"(?:takes?|taking|took|pulls?|pulling) (?:off )?(?:all )?(?:her|his|their) clothes(?: off)?|clothes off|"
    r"nothing on|wearing nothing|without (?:any )?clothes|no clothes|"
    r"nackt|nackte[nmrs]?|nacktheit|nacktbad\w*|nacktfoto\w*|nacktszene\w*|nacktaufnahme\w*|sexszene\w*|sexvideo\w*|"
    r"geschlechtsverkehr|beischlaf|erotisch\w*|orgie\w*|brueste|bruesten|busen|nippel\w*|"
    r"entkleidet|ausgezogen und nackt|muschi|schwanz lutsch\w*|selbstbefriedig\w*|befriedigt sich|"
    r"stripperin\w*|striptease\w*|pornografi\w*|pornographi\w*|sexfilm\w*|zieht sich (?:ganz |komplett )?aus"
]
# Suggestive context: refused with a minor, or with nudity; alone it is allowed.
SEXUAL_CONTEXT = [
    r"sexy|sexual\w*|sexuell\w*|seductiv\w*|seductress|provocativ\w*|sensual\w*|suggestiv\w*|lingerie|underwear|"
    r"panties|thong|bra|bikini|swimsuit posing|posing (?:seductively|provocatively|sexily)|spread legs|"
    r"in (?:a |her |his )?bed|on (?:a |the |her |his )?bed|undress\w*|strip\w*|kiss\w*|intimate\w*|aroused|arousing|"
    r"for the camera|on camera|in front of (?:the |a )?camera|vor der kamera|"
    r"verfuehrerisch\w*|aufreizend\w*|unterwaesche|reizwaesche|dessous|zieht sich aus|ausgezogen|im bett|"
    r"auf dem bett|erotisch\w*|kuesst\w*|kuessen|intim\w*|sex|touching|beruehrt sich"
]
# Phrases that contain a sexual term and are not sexual (removed before matching).
SEXUAL_BENIGN = [
    r"nude (?:colou?red?|colou?r|tones?|shades?|lipsticks?|beige|pink|heels|pumps|shoes|palettes?|makeup|nails|"
    r"polish|dress|fabric)",
    r"(?:beige|pink|brown|skin|blush) and nude", r"(?:a|the) nude (?:lipstick|shade|tone|palette|heel)",
    r"sex (?:determination|of (?:the |a )?(?:chick|animal|baby|puppy|kitten|fish)\w*|education|ed)",
    r"sexual (?:health|education|harassment awareness|orientation)",
    r"nackte (?:baeume|aeste|waende|wand|fuesse|fuessen|zahlen|fakten|wahrheit|felsen|erde)",
    r"nackten? (?:fuess\w*|zahl\w*|fakt\w*)", r"naked eye", r"stripp\w* (?:paint|wallpaper|wire|the bed)",
    r"strip (?:mall|club sign|steak|of (?:land|paper|light))", r"comic strip\w*", r"landing strip",
    r"(?:in|on) (?:his|her|the|a) bed (?:reading|sleeping)",
]

SELF = [r"myself|himself|herself|themselves|yourself|oneself|themself|self|sich|selbst|mich|dich"]
# Inherently self-harm (an act on oneself or suicide named).
SELF_HARM = [
    r"suicid\w*|overdos\w*|ueberdosis|self[ -]?harm\w*|self[ -]?injur\w*|self[ -]?mutilat\w*|selbstmord\w*|suizid\w*|selbstverletz\w*|"
    r"selbsttoetung|freitod|"
    r"(?:kill|kills|killed|killing|hang|hangs|hanged|hanging|shoot|shoots|shooting|shot|cut|cuts|cutting|stab|stabs|"
    r"stabbing|burn|burns|burning|drown|drowns|drowning|poison|poisons|poisoning|starv\w*|harm|harms|harming|hurt|"
    r"hurts|hurting) (?:myself|himself|herself|themselves|yourself|oneself)|"
    r"end (?:my|his|her|their|your) (?:own )?li(?:fe|ves)|end it all|take (?:my|his|her|their|your) (?:own )?life|"
    r"takes (?:his|her|their) (?:own )?life|taking (?:my|his|her|their|your) (?:own )?life|"
    r"(?:cut|cuts|cutting|slit|slits|slitting|slash\w*|open\w*) (?:open )?(?:my|his|her|their|your|the) wrists?|"
    r"wrists? (?:cut|slit|slashed)|slit\w* (?:\w+ )?wrists?|want(?:s)? to die|wanna die|"
    r"to kill (?:myself|himself|herself|themselves|yourself)|thinspiration|thinspo|pro[ -]?ana|pro[ -]?mia|"
    r"ritzen|ritzt sich|ritzt|aufritz\w*|pulsader\w*|"
    r"sich (?:das leben nehmen|umbringen|erhaengen|erschiessen|toeten|ritzen|verletzen|vergiften)|"
    r"bringt sich um|bringen sich um|umbringt|umzubringen|nimmt sich das leben|nahm sich das leben|erhaengt sich|"
    r"erschiesst sich|ertraenkt sich|vergiftet sich|sterben will|sterben wollen|will sterben"
]
# A method that is self-harm when aimed at oneself, realistic, or with intent (see the rules).
SELF_HARM_METHOD = [
    r"nooses?|razor ?blades?|(?:drink\w*|swallow\w*) (?:a |some |the )?(?:bottle of )?(?:bleach|antifreeze|rat poison|"
    r"poison)|(?:a |the )?(?:whole |entire )?(?:bottle|handful|box) of (?:sleeping )?(?:pills|tablets)|"
    r"(?:jump\w*|leap\w*|throw\w* (?:himself|herself|themselves)) (?:off|from) (?:a |the )?(?:bridge|roof|rooftop|building|"
    r"cliff|balcony|tower|window|high rise|skyscraper)|in front of a (?:train|truck|bus)|gun in (?:his|her|my|their|"
    r"your) mouth|exhaust fumes|car engine running|wrists?|(?:cut|cuts|cutting|slash\w*) (?:her|his|their|my) "
    r"(?:arms?|legs?|thighs?|skin)|starv\w*|vomit\w* after (?:every |each )?meals?|"
    r"strick|schlinge|rasierklinge\w*|(?:spring\w*|stuerz\w*) (?:von|vom|aus) (?:einer |einem |der |dem )?(?:bruecke|dach|"
    r"hochhaus|turm|balkon|fenster)|vor einen zug|bleichmittel|schlaftabletten|tabletten schluck\w*|"
    r"die arme aufritz\w*|pulsader\w*"
]
THREAT_WORD = [r"threaten\w*|threats?|droh\w*|bedroh\w*"]
REALISTIC = [
    r"realistic\w*|photorealistic|photo-realistic|hyper ?realistic|lifelike|life-like|real footage|footage|"
    r"documentary style|cctv|bodycam|graphic|detailed|close ?up|real life|real-life|as real as possible|"
    r"realistisch\w*|fotorealistisch\w*|echte aufnahme\w*|detailliert\w*|nahaufnahme"
]
INSTRUCT = [
    r"how to|how do (?:i|you)|how can (?:i|you)|how one|how you|step by step|step-by-step|steps to|tutorial\w*|"
    r"guide|guides|guide to|instructions?|instructional|recipe for|manual|walkthrough|show me|teach\w* (?:me|how)|"
    r"explain\w* how|the best way|the easiest way|the quickest way|the fastest way|ways to|"
    r"anleitung\w*|schritt fuer schritt|schritt fuer schritt anleitung|wie man|wie kann ich|zeig mir|erklaer\w*|"
    r"rezept fuer|am besten|am einfachsten|bauanleitung|tipps"
]

# People are the object: acts of violence that need a person after them.
VIOLENT_ACT = [
    r"kill(?:s|ed|ing)?|murder\w*|stab(?:s|bed|bing)?|shoot(?:s|ing)?|shot|shooting at|behead\w*|decapitat\w*|"
    r"strangl\w*|chok(?:e|es|ed|ing)|butcher(?:ed|ing)|slash\w*|burn(?:s|ed|ing)? alive|torch\w*|tortur\w*|"
    r"execut(?:e|es|ed|ing)|hang(?:s|ed|ing)?|lynch\w*|rap(?:e|es|ed|ing)|beat(?:s|ing)?|beaten|kick\w*|punch\w*|"
    r"stomp\w*|bludgeon\w*|club(?:s|bed|bing)|hack(?:s|ed|ing)? (?:to death|apart|up)|run(?:s|ning)? over|ran over|"
    r"mow(?:s|ed|ing)? down|gun(?:s|ned|ning)? down|massacr\w*|slaughter\w*|abus(?:e|es|ed|ing)|assault\w*|"
    r"attack\w*|maim\w*|mutilat\w*|dismember\w*|disembowel\w*|eviscerat\w*|skin(?:s|ned|ning)? alive|"
    r"drown(?:s|ed|ing)|set(?:s|ting)? (?:\w+ )?on fire|bomb(?:s|ed|ing)?|blow(?:s|ing)? up|blew up|whip(?:s|ped|ping)|"
    r"toet\w*|ermord\w*|ersticht|erstach|erstoch\w*|erstech\w*|erschiess\w*|erschoss\w*|erschlaeg\w*|erschlag\w*|"
    r"erwuerg\w*|vergewaltig\w*|schlacht\w*|verbrenn\w*|erhaeng\w*|zusammenschlag\w*|zusammengeschlagen|"
    r"verpruegel\w*|pruegel\w*|gepruegelt|schlaegt|foltert|gefoltert|hingerichtet|richtet \w* hin|enthaupt\w*|"
    r"misshandel\w*|ueberfahr\w*|niedergestochen|niedergeschossen|abgeschlachtet|massakrier\w*|ertraenk\w*|"
    r"angezuendet|zuendet \w* an|anzuenden|anzuende|jagt \w* in die luft|sprengt"
]
# Graphic violence: refused on its own.
GORE = [
    r"gore|gory|gorey|dismember\w*|decapitat\w*|behead\w*|disembowel\w*|mutilat\w*|eviscerat\w*|tortur\w*|"
    r"massacr\w*|blood ?bath|blood spatter\w*|blood everywhere|pools? of blood|covered in blood|bloody corpses?|"
    r"guts (?:spill\w*|out|everywhere)|entrails|intestines (?:spill\w*|out)|innards|"
    r"severed (?:head|heads|limb|limbs|arm|arms|leg|legs|hand|hands|finger|fingers)|"
    r"(?:bodies|body|limbs|people|corpses?) (?:torn|ripped|blown) (?:apart|to pieces|open)|torn apart|"
    r"brains? (?:blown|splatter\w*|out)|skull (?:crushed|smashed|caved)|mass shooting\w*|school shooting\w*|"
    r"public executions?|executions? of|firing squad|to death|dead bod(?:y|ies) (?:of|covered)\w*|corpses? pil\w*|"
    r"bleeding (?:out|to death)|snuff|exploding head|"
    r"enthaupt\w*|zerstueckel\w*|verstuemmel\w*|blutbad\w*|gemetzel\w*|massaker\w*|folter\w*|hinrichtung\w*|"
    r"amoklauf\w*|amoklaeufer\w*|ausgeweidet\w*|abgetrennte\w* (?:kopf|koepfe|arm|arme|bein|beine|hand|haende|"
    r"gliedmassen)|zu tode|blutueberstroemt\w*|leichenberg\w*|eingeweide"
]
# Phrases that contain a violent term and are not violent (removed before matching).
VIOLENCE_BENIGN = [
    r"shoot\w* (?:a |an |the |some )?(?:film|movie|video|scene|photo\w*|picture\w*|footage|portraits?|hoops|"
    r"basket\w*|ball|goal|three pointer|free throw|puck|arrow|commercial|wedding|documentary)",
    r"(?:film|photo|video|movie) shoot\w*", r"shot of (?:a |the )?",
    r"(?:wide|close|long|tracking|camera|establishing|aerial|drone|overhead|slow motion|dolly) shots?",
    r"(?:ein|einen|der|den) film dreh\w*", r"execut\w* (?:a |the |his |her )?(?:plan|program|code|move|jump|turn|"
    r"trick|manoeuvre|maneuver|order|dance|routine|pass)",
    r"burn\w* (?:calories|rubber|the midnight oil|wood|logs|candles?)", r"trump cards?", r"chicken breasts?",
    r"(?:hang\w*|hung) (?:a |the |up )?(?:picture|painting|lamp|coat|sign|flag|laundry|washing|lights|decorations|"
    r"curtains?|poster)", r"hangs? (?:out|around|loose|glider\w*)", r"hang ?glid\w*", r"hangar\w*",
    r"kills? (?:time|the lights|the engine)", r"killer ?whales?", r"killerwal\w*", r"beat(?:s|ing)? (?:the |a )?"
    r"(?:drum|drums|eggs|batter|cream|record|clock|heat|traffic|rhythm)", r"heartbeat", r"beat(?:s)? (?:him|her|"
    r"them) at (?:chess|cards|tennis|a game)", r"captures? the (?:black|white) (?:king|queen)",
    r"(?:black|white) king (?:falls|is checkmated|is mated|topples)", r"checkmat\w*", r"schachmatt",
    r"punch(?:es|ing)? (?:a |the )?(?:punching bag|bag|card|clock|ticket|hole|dough)", r"punching bag",
    r"kick\w* (?:a |the )?(?:ball|football|soccer ball|can|door open|off)", r"kickboard\w*|kickoff|kick off",
    r"attack\w* (?:the |a )?(?:goal|net|ball|problem|hill|climb)", r"bomb disposal", r"bath ?bombs?",
    r"photo ?bomb\w*", r"bombenwetter|bombenstimmung|bombig", r"schlachter\w*|schlachterei\w*|schlachthof\w*",
    r"schiessstand|schiessstaende|schuetzenverein|torschuss|schiesst ein tor|schiesst den ball|schiesst aufs tor",
    r"erschossen? (?:vor )?(?:muede|erschoepft)", r"folterkammer museum", r"choke (?:the |a )?(?:engine|valve)",
    r"(?:executive|execution) (?:chef|producer|summary|order|branch|suite)", r"strangler fig",
    r"club (?:house|sandwich|night|soda|members?)", r"nightclub", r"golf clubs?",
    r"whip(?:s|ped|ping)? (?:cream|the cream|egg whites|eggs|up)", r"whipped cream", r"schlagsahne",
    r"blood (?:orange|oranges|red|moon|type|test|tests|pressure|sample|donation|bank|sugar|cells?)",
    r"blutorange\w*|blutdruck|blutprobe\w*|blutspende\w*|blutwurst", r"to death (?:metal|valley)",
]

GROUP = [
    r"jews?|jewish (?:people|men|women|children|families|community)|muslims?|moslems?|islamists?|christians?|"
    r"catholics?|hindus?|sikhs?|buddhists?|atheists?|blacks|black (?:people|men|women|folks?|americans?|persons?)|"
    r"whites|white (?:people|men|women|folks?)|asians?|chinese people|chinese|japanese people|koreans?|indians?|"
    r"arabs?|africans?|mexicans?|latinos?|latinas?|hispanics?|immigrants?|migrants?|refugees?|asylum seekers?|"
    r"foreigners?|roma|gypsies|gypsy|sinti|gays?|gay (?:people|men|women|couples?)|lesbians?|bisexuals?|"
    r"queers?|queer people|homosexuals?|trans (?:people|women|men|persons?)|transgender(?:s| people| women| men)?|"
    r"lgbtq?\w*|women|females|girls|disabled (?:people|persons?|children)|the disabled|cripples?|"
    r"autistic (?:people|children)|down syndrome (?:people|children)|poles|russians?|ukrainians?|turks?|kurds?|"
    r"syrians?|afghans?|palestinians?|israelis?|irish|germans?|americans?|mexican people|slavs?|"
    r"juden|judentum|juedinnen|juedische\w* (?:menschen|mitbuerger\w*|familien|gemeinde)|muslime|muslimen|"
    r"moslems|islamisten|christen|katholiken|hindus|schwarze|schwarzen|weisse|weissen|asiaten|chinesen|araber|"
    r"arabern|afrikaner\w*|tuerken|kurden|syrer\w*|afghanen|polen|russen|ukrainer\w*|auslaender\w*|"
    r"fluechtling\w*|gefluechtete\w*|migrant\w*|zuwanderer\w*|einwanderer\w*|asylanten|asylbewerber\w*|"
    r"sinti|zigeuner\w*|schwule|schwulen|lesben|homosexuelle\w*|transmenschen|transfrauen|transpersonen|queere|"
    r"behinderte\w*|frauen"
]
# What a hateful portrayal calls a group (dehumanising, demonising, or inferior).
DEHUMANISE = [
    r"vermin|rats?|rodents?|cockroach\w*|roaches|insects?|bugs|lice|locusts?|parasit\w*|leeches|maggots?|worms?|"
    r"snakes?|apes?|monkeys?|gorillas?|baboons?|animals?|beasts?|dogs?|pigs?|swine|cattle|savages?|subhumans?|"
    r"sub-humans?|untermensch\w*|plague|disease\w*|diseased|virus|cancer|infestation|infest\w*|swarm\w*|filth\w*|"
    r"dirty|scum|trash|garbage|freaks?|monsters?|demons?|devils?|inferior|less than human|not human|worthless|"
    r"burdens?|useless eaters|degenerates?|perverts?|pedophil\w*|paedophil\w*|groomers?|sick|mentally ill|"
    r"terrorists?|criminals?|rapists?|thieves|thief|murderers?|invaders?|invasion|invading|greedy|"
    r"control (?:the )?(?:world|banks|media|money)|world domination|inferior race|"
    r"ungeziefer|ratten|ratte|schaedling\w*|kakerlak\w*|insekten|laeuse|parasit\w*|affen|affe|tiere|tier|"
    r"schweine|hunde|bestien|wilde|seuche|krankheit|krank|kranke|pest|abschaum|dreck|muell|minderwertig\w*|"
    r"terroristen|kriminelle\w*|vergewaltiger|diebe|invasoren|ueberflut\w*|ueberschwemm\w*|schmarotzer\w*|"
    r"plage|gesindel|pack"
]
# How a prompt puts a group into such a frame ("depicted as", "sind", "mocking ... as").
PORTRAY = [
    r"as|like|are|is|were|shown|show|shows|showing|depict\w*|portray\w*|presented|drawn|caricatur\w*|"
    r"mock\w*|ridicul\w*|exposing|expose|proving|prove|become|turn into|turning into|turned into|"
    r"als|wie|sind|ist|waren|dargestellt|darstellen|zeigt|gezeigt|zeigen|verspott\w*|verhoehn\w*|karikatur\w*|"
    r"beweist|werden"
]
# Violence or exclusion called for against a group.
HATE_ACT = [
    r"kill(?:ed|ing)?|exterminat\w*|gas(?:sed|sing)?|lynch\w*|deport\w*|eradicat\w*|wipe(?:d)? out|wiping out|"
    r"hate|burn(?:ed|ing)?|shoot|shot|hang(?:ed)?|purg(?:e|ed|ing)|cleanse|cleansing|get rid of|ban all|"
    r"should (?:be )?(?:die|killed|shot|gassed|deported|hanged|exterminated|banned|removed|burned|sterili[sz]ed)|"
    r"must (?:be )?(?:die|killed|shot|gassed|deported|exterminated|removed|go)|deserve to die|"
    r"toetet|toeten|getoetet|vergast|vergasen|vernichte\w*|hasst|hassen|verbrennt|verbrennen|erschiessen|"
    r"erschossen|abschieben|abgeschoben|ausrotten|ausgerottet|raus|sollen sterben|muessen weg|"
    r"sollen (?:alle )?(?:erschossen|getoetet|vergast|vernichtet|abgeschoben|verbrannt|aufgehaengt) werden"
]
HATE_SYMBOLS = [
    r"heil hitler|sieg heil|white power|white supremac\w*|white pride|master race|herrenrasse|ethnic cleansing|"
    r"racial purity|rassenreinheit|race war|rassenkrieg|subhumans?|untermensch\w*|holocaust (?:denial|was fake|"
    r"never happened|hoax|is a lie)|holocaustleugnung|gas chambers? (?:for|fuer)|swastika\w*|hakenkreuz\w*|kkk|"
    r"ku klux klan|nazi (?:propaganda|rally|salute|flag)|hitlergruss|judenhass\w*|rassenhass\w*|volksverraeter\w*|"
    r"superiority of the (?:white|aryan) race|aryan race|arische rasse|weissen rasse|white race|great replacement|"
    r"umvolkung|ueberlegenheit der \w+ rasse|rassisch minderwertig\w*|lebensunwert\w*|"
    r"(?:auslaender|fluechtlinge|juden|muslime|migranten|kanaken) raus|deutschland den deutschen"
]
HATE_BENIGN = [
    r"black and white|white (?:rabbits?|cats?|dogs?|horses?|snow|sand|wine|bread|walls?|house|flowers?|clouds?)",
    r"black (?:cats?|dogs?|horses?|rocks?|holes?|forest|coffee|bread|king|queen|pieces?|squares?|belt)",
    r"schwarze[nr]? (?:katze|kater|hund|pferd|koenig|dame|loch|tee|kaffee|brett|felder?|figur\w*|johannisbeer\w*)",
    r"weisse[nr]? (?:katze|hund|pferd|wand|koenig|dame|figur\w*|wolken?)",
    r"lab rats?|pet rats?", r"juedische\w* museum", r"ist krank geschrieben",
]

HARASS_TARGET = [
    r"(?:my|our|your) (?:\w+ )?(?:classmates?|class mate|coworkers?|co-workers?|colleagues?|neighbou?rs?|ex|"
    r"ex-?(?:boyfriend|girlfriend|wife|husband|partner)|boss|manager|teacher|professor|landlord|roommate|flatmate|"
    r"sister|brother|cousin|stepmom|stepdad|mother in law|friend|girlfriend|boyfriend|wife|husband|partner|"
    r"student|pupil|tenant|employee|teammate|crush|bully)|"
    r"(?:mein|meine|meinen|meinem|meiner|meines|unser\w*) (?:\w+ )?(?:mitschueler\w*|schueler\w*|kolleg\w*|nachbar\w*|ex|"
    r"ex-?freund\w*|exfreund\w*|chef\w*|lehrer\w*|vermieter\w*|mitbewohner\w*|schwester|bruder|cousin\w*|"
    r"freund\w*|frau|mann|schwiegermutter|mitarbeiter\w*|klassenkamerad\w*)|"
    r"you|u|ya|du|dich|dir|a (?:fat|ugly|weird|poor|shy) (?:kid|boy|girl|student)|an? (?:\w+ )?kid|"
    r"(?:mr|mrs|ms|herr|frau) [a-z]+"
]
INSULT = [
    r"loser\w*|idiot\w*|moron\w*|retard\w*|stupid|dumb|ugly|fat|fatso|fatty|obese|disgusting|pathetic|worthless|"
    r"useless|slut\w*|whore\w*|bitch\w*|cunt\w*|skank\w*|hoe|hoes|pig|cow|bastard\w*|asshole\w*|dickhead\w*|"
    r"prick|freak|weirdo|creep|scum|trash|garbage|nobody likes|no one likes|hated by everyone|kill yourself|kys|"
    r"versager\w*|idiot|idioten|depp\w*|trottel\w*|dumm\w*|haesslich\w*|fett\w*|fette[nrs]?|widerlich\w*|"
    r"erbaermlich\w*|nutte\w*|schlampe\w*|hure\w*|fotze\w*|schwein|sau|kuh|arschloch\w*|wichser\w*|missgeburt\w*|"
    r"opfer|niemand mag"
]
HARASS_ACT = [
    r"mock\w*|humiliat\w*|ridicul\w*|make fun of|making fun of|makes fun of|laugh\w* at|laughed at|bull(?:y|ies|ied|"
    r"ying)|shame|shaming|shamed|spit(?:s|ting)? on|spat on|insult\w*|belittl\w*|taunt\w*|harass\w*|"
    r"mak\w* (?:him|her|them) cry|until (?:he|she|they) "
    r"cr(?:y|ies)|slap\w*|beat\w* up|expos(?:e|es|ing) (?:him|her)|doxx\w*|revenge|"
    r"verspott\w*|demuetig\w*|laecherlich|lustig machen|mach dich ueber|macht sich ueber|auslach\w*|ausgelacht|"
    r"gemobbt|mobb\w*|beschimpf\w*|beleidig\w*|angespuckt|anspuck\w*|bloss stell\w*|blossstell\w*|"
    r"fertig mach\w*"
]
THREAT = [
    r"i will (?:find|kill|hurt|get|burn|destroy|ruin|end) (?:you|him|her|them)|i'?ll (?:find|kill|hurt|get) (?:you|"
    r"him|her)|i know where (?:you|he|she|they|his|her) (?:\w+ )*(?:live|lives|go|goes)|(?:should|better|had better) watch out|watch your back|"
    r"you(?:'re| are) (?:dead|next)|(?:burn|burns|burning) (?:his|her|their|your) (?:house|car|home) down|"
        r"ich (?:finde|toete|kriege|erwische) dich|ich weiss wo du wohnst|pass bloss auf|du bist tot|"
    r"(?:sein|ihr|dein)(?:e|en)? (?:auto|haus|wohnung) an(?:zuende|zuenden|zuendet)|anzuende"
]

ILLICIT_WEAPON = [
    r"pipe ?bombs?|bombs?|car bombs?|nail bombs?|letter bombs?|explosives?|explosive (?:device|vest|belt|drone)|"
    r"ieds?|detonators?|suicide (?:vest|belt|bomber)|grenades?|molotov\w*|napalm|thermite|tnt|c4|semtex|"
    r"nerve (?:gas|agent)|sarin|ricin|anthrax|mustard gas|chemical weapons?|bioweapons?|dirty bomb|"
    r"ghost guns?|untraceable (?:gun|guns|firearm|weapon)s?|(?:3d[ -]?print\w*|printing|printed) (?:a |an )?"
    r"(?:working )?(?:guns?|firearms?|pistols?|rifles?)|gun without (?:a )?background check|silencers?|"
    r"full auto conversion|auto sear|bump stock|"
    r"bombe|bomben|rohrbombe\w*|autobombe\w*|nagelbombe\w*|sprengstoff\w*|sprengsatz\w*|sprengguertel\w*|"
    r"handgranate\w*|molotowcocktail\w*|molotow\w*|nervengas|nervengift|giftgas|chemiewaffe\w*|"
    r"schusswaffe\w* (?:bauen|drucken)"
]
ILLICIT_DRUG = [
    r"meth|methamphetamine|crystal meth|fentanyl|heroin|cocaine|crack cocaine|lsd|mdma|ecstasy|ghb|drugs?|"
    r"narcotics?|opioids?|ketamine|amphetamine\w*|"
    r"drogen|rauschgift\w*|kokain|heroin|crystal meth|chrystal"
]
ILLICIT_ACT = [
    r"terror\w*|mass shooting|shoot up|shoots up|shooting up|blow(?:ing)? up|blew up|hijack\w*|"
    r"poison(?:ing)? (?:someone|somebody|a person|my|his|her|people|a man|a woman|the water supply)|"
    r"without getting caught|get away with|untraceable|smuggl\w*|traffick\w*|launder\w*|break(?:ing)? into|"
    r"steal(?:ing)?|hotwir\w*|pick(?:ing)? (?:a |the )?lock to|kidnap\w*|synthesi[sz]\w*|cook(?:ing)? (?:meth|crystal|"
    r"drugs)|make (?:meth|drugs|crystal)|assassinat\w*|massacre|shooting at (?:a |the )?(?:school|mall|concert|church|"
    r"mosque|synagogue)|"
    r"anschlag\w*|terroranschlag\w*|attentat\w*|terror\w*|vergift\w*|unbemerkt|schmuggel\w*|einbrech\w*|einbruch\w*|"
    r"stehl\w*|stiehlt|klau\w*|entfuehr\w*|in die luft (?:jagen|sprengen)|sprengen"
]
ILLICIT_BENIGN = [
    r"bath ?bombs?|bombe (?:glacee|eis)|eisbombe|bomb disposal|(?:history|documentary|museum) (?:of|about) (?:the )?"
    r"(?:atomic |nuclear )?bombs?", r"photo ?bomb\w*", r"bombenwetter|bombenstimmung|bombig|bombastisch",
    r"crystal (?:clear|ball|glass|glasses|chandelier|vase|lake|water|palace)", r"crack(?:s|ed|ing)? (?:an? |the )?"
    r"(?:egg|eggs|nut|nuts|code|case|joke|window|whip|smile|open)", r"drug ?stores?", r"drugstore", r"drogerie\w*",
    r"(?:police|sniffer) dogs? (?:sniff\w*|search\w*|find\w*)", r"crack in the", r"terrier\w*", r"terrarium\w*",
    r"terrace\w*|terrasse\w*", r"terrain\w*", r"heart attack\w*|herzinfarkt", r"panic attack\w*",
]


# Lexicons that only the structural rules use.
SELF_HARM_NOT = [r"suicide (?:vests?|belts?|bombers?|bombings?|attacks?|squad|doors?|prevention|"
    r"awareness|hotlines?|helplines?|crisis lines?|hotline number)|suizidpraevention\w*|"
    r"selbstmordattentaet\w*|selbstmordanschlag\w*|to die for|"
    r"(?:left|leaves|leaving) to die|born to die"]
SH_INTENT = [r"to die|to end it|end it all|ending it all|um zu sterben|zu sterben|sterben will|"
    r"will sterben|no reason to live|kein grund zu leben"]
STRONG_DEHUMANISE = [
    r"vermin|cockroach\w*|roaches|lice|locusts?|parasit\w*|leeches|maggots?|subhumans?|sub-humans?|"
    r"untermensch\w*|plague|infestation|infest\w*|scum|less than human|not human|useless eaters|"
    r"control (?:the )?(?:world|banks|media|money)|world domination|inferior race|ungeziefer|schaedling\w*|"
    r"kakerlak\w*|abschaum|schmarotzer\w*|gesindel|seuche|pest|minderwertig\w*"]
WEAPON_MAKE = [r"assembl\w*|build\w*|built|mak(?:e|es|ing)|made|construct\w*|3d[ -]?print\w*|print\w*|"
    r"wir(?:e|es|ed|ing)|rig(?:s|ged|ging)?|brew\w*|mix\w*|bau\w*|gebaut|herstell\w*|hergestellt|basteln|bastelt|"
    r"zusammenbau\w*|mischen|mischt"]
DRUG_TRADE = [r"mak(?:e|es|ing)|cook\w*|synthesi[sz]\w*|smuggl\w*|sell\w*|sold|deal\w*|grow\w*|"
    r"brew\w*|produc\w*|traffick\w*|herstell\w*|kochen|kocht|schmuggel\w*|verkauf\w*|"
    r"strecken|dealen|anbau\w*"]
ILLICIT_STRONG = [r"plan\w* (?:a |an )?(?:terrorist |terror )?attack|terrorist attack|terror attack|"
    r"terroranschlag\w*|shoot(?:s|ing)? up (?:a |the )?(?:school|mall|church|mosque|synagogue|concert|club|office|party|"
    r"crowd|festival|station)|mass shooting at|"
    r"poison\w* (?:someone|somebody|a person|people) without|without getting caught|"
    r"get away with (?:murder|killing)|anschlag (?:auf|planen|plant)|attentat auf"]
SPECIFIC_DRUG = [r"meth|methamphetamine|crystal meth|fentanyl|heroin|cocaine|crack cocaine|lsd|mdma|"
    r"ecstasy|ghb|ketamine|kokain|chrystal meth"]
ATTACK_TARGET = [r"attack\w* (?:on |against )?(?:a |an |the )?(?:crowd|train|station|train station|"
    r"school|mall|church|mosque|synagogue|concert|people|police|bus|stadium|airport|city|"
    r"government|market|festival)"]

CATEGORIES_ADVICE = {
    "sexual": "remove the nudity or sexual activity; clothed, non-sexual scenes are fine",
    "sexual/minors": "tenku never shows minors in a sexual or suggestive context; remove it entirely",
    "harassment": "remove the insults, mockery or threats aimed at a person",
    "harassment/threatening": "remove the threat against a person",
    "hate": "remove the demeaning portrayal of a group; neutral or respectful scenes with any group are fine",
    "hate/threatening": "remove the call for violence against a group",
    "self-harm": "remove the self-harm or suicide; if you are thinking about hurting yourself, please reach out to "
                 "a local crisis line or someone you trust",
    "self-harm/intent": "remove the wish to die or to hurt oneself; if this is about you, please reach out to a "
                        "local crisis line or someone you trust",
    "self-harm/instructions": "remove the request for self-harm methods; if this is about you, please reach out to "
                              "a local crisis line or someone you trust",
    "violence": "remove the violence against people (sport, cooking, a chess game or a battle map are fine)",
    "violence/graphic": "remove the gore or graphic injury; keep violence out of frame and non-graphic",
    "illicit": "remove the instructions for crime, weapons or drugs",
    "illicit/violent": "remove the instructions for weapons, explosives or attacks",
    "public-figures": "replace the real person with a fictional character described in your own words (tenku makes "
                      "no videos of real people)",
    "copyrighted-characters": "replace the character with an original one described in your own words, or have "
                              "the operator allow it (TENKU_MODERATION_ALLOW) if you hold the rights",
    "custom": "remove the phrase this deployment's deny list names (TENKU_MODERATION_DENY)",
}

_FUNCTION_WORDS = ("a an the all of to in on at by with for from is are as and or his her their my your him them "
                   "it its be been being was were will i you he she we they this that who what how step by one two ex "
                   "ein eine einen einem einer der die das den dem des und oder mit von zu im am als ist sind sich "
                   "wie man fuer auf in aus nach bei sein seine ihr ihre")


_SUFFIX_WORDS = {"ing", "ies", "ied", "ers", "ern", "ung", "ungen", "innen", "ten", "est"}


def _optional_forms(word: str) -> list[str]:
    """'neighbou?rs?' -> neighbours, neighbour, neighbors, neighbor."""
    forms = [""]
    i = 0
    while i < len(word):
        c = word[i]
        if i + 1 < len(word) and word[i + 1] == "?":
            forms = [f + c for f in forms] + forms
            i += 2
        else:
            forms = [f + c for f in forms]
            i += 1
    return forms[:16]


def vocabulary() -> set[str]:
    """Words that the lexicons spell out (and common function words), for splitting squashed letters."""
    from tenku.safety import moderation_names as names

    words = set(_FUNCTION_WORDS.split())  # short words kept even where they are shorter than three letters
    sources = [v for k, v in globals().items() if k.isupper() and isinstance(v, list)]
    sources += [names.PUBLIC_FIGURES, names.CHARACTERS]
    for patterns in sources:
        for p in patterns:
            plain = re.sub(r"\(\?[:!=<]+|\\w\*|\\b|\\s|[*+()\[\]{}\\]|\d", " ", p)
            for alt in plain.split("|"):
                for w in alt.split():
                    words.update(v for v in _optional_forms(w) if v.isalpha() and len(v) >= 3
                                 and v not in _SUFFIX_WORDS)
    return words
